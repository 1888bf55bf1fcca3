"""Policy/value network shared by REINFORCE, A2C and PPO, and the on-policy rollout tensors they consume.

``ActorCritic`` is what rollout workers build and act with (``act`` under no_grad returns the
action with its log-prob and value, which arrive in ``RolloutBatch.logprobs``/``values``) and what
the learner trains. The torso comes from ``build_torso`` (MLP for vectors, Nature-CNN for images); actor and
critic either share it or each own one.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from pydantic import ConfigDict, Field, model_validator
from torch import nn

from raylight.rl.acting import ActorOutput, Exploration
from raylight.rl.distributions import Distribution, StateDependentGaussianHead, build_policy_head
from raylight.rl.losses import policy_gradient_loss
from raylight.rl.networks import EncoderTorsoFields, build_torso, layer_init, pytorch_default_init
from raylight.rl.rollout import RolloutBatch


class PolicyNetConfig(EncoderTorsoFields):
    """Network fields every policy-gradient agent config has (the agent configs extend this)."""

    model_config = ConfigDict(extra="forbid")

    hidden: list[int] = Field(default_factory=lambda: [64, 64], description="MLP widths (vector observations) of the actor, and of the critic unless critic_hidden.")
    critic_hidden: list[int] | None = Field(None, description="The critic's own MLP widths (SB3 net_arch vf); None: the same as hidden. Needs shared_torso false.")
    activation: Literal["relu", "tanh"] = Field("relu", description="MLP hidden nonlinearity (vector observations; the Nature-CNN keeps ReLU).")
    shared_torso: bool = Field(False, description="Actor and critic share one torso (usual for CNNs) or own one each.")
    ortho_init: bool = Field(True, description="Orthogonal init (gain sqrt 2 for hidden layers, 0.01 policy, 1 value), as SB3/CleanRL; false: PyTorch's default init.")
    log_std: Literal["state_independent", "state_dependent"] = Field(
        "state_independent", description="Box actions: a learned log-std vector, or a linear head on the features (clamped to [-20, 2])."
    )
    log_std_init: float = Field(0.0, description="Box actions: initial log-std (the vector's value, or the state-dependent head's bias).")

    @model_validator(mode="after")
    def _critic_widths_need_own_torso(self) -> PolicyNetConfig:
        if self.critic_hidden is not None and self.shared_torso:
            raise ValueError("critic_hidden: a shared torso has one set of widths; set agent.shared_torso=false")
        return self


class ActorCritic(nn.Module):
    """obs (B, *obs_shape) -> (action distribution, value (B,))."""

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, net: PolicyNetConfig) -> None:
        super().__init__()
        self.torso = build_torso(obs_space, net.hidden, net.activation, net=net)
        self.critic_torso = None if net.shared_torso else build_torso(obs_space, net.critic_hidden or net.hidden, net.activation, net=net)
        self.pi = build_policy_head(act_space, self.torso.out_dim, net.log_std_init, state_dependent_std=net.log_std == "state_dependent")
        self.v = layer_init(nn.Linear((self.critic_torso or self.torso).out_dim, 1), gain=1.0)
        if not net.ortho_init:
            pytorch_default_init(self)
            if isinstance(self.pi, StateDependentGaussianHead):
                nn.init.constant_(self.pi.log_std.bias, net.log_std_init)

    def forward(self, obs: torch.Tensor) -> tuple[Distribution, torch.Tensor]:
        h = self.torso(obs)  # (B, F)
        h_v = h if self.critic_torso is None else self.critic_torso(obs)
        return self.pi(h), self.v(h_v).squeeze(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs) (B,) without building the action distribution."""
        h_v = self.torso(obs) if self.critic_torso is None else self.critic_torso(obs)
        return self.v(h_v).squeeze(-1)

    def initial_state(self, num_envs: int) -> None:
        return None  # feed-forward: no memory

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False,
        state: torch.Tensor | None = None, episode_start: torch.Tensor | None = None,
    ) -> ActorOutput[torch.Tensor]:
        """Sampled (or, if ``deterministic``, modal) actions with their log-prob (B,) and value (B,).

        The policy explores by sampling; epsilon-greedy would make the stored log-probs wrong.
        """
        if explore.epsilon is not None:
            raise ValueError("ActorCritic explores by sampling its policy; Exploration.epsilon is for Q-networks")
        dist, value = self.forward(obs)
        actions = dist.mode() if deterministic else dist.sample()
        return ActorOutput(actions, logprobs=dist.log_prob(actions), values=value)


def build_actor_critic(net: PolicyNetConfig, obs_space: gym.Space, act_space: gym.Space) -> ActorCritic:
    """The acting (and learning) network of every policy-gradient agent."""
    return ActorCritic(obs_space, act_space, net)


class OnPolicyRollout(NamedTuple):
    """One iteration's rollouts from every worker, as time-major tensors (T, N, ...), N = all envs."""

    obs: torch.Tensor  # (T, N, *obs_shape)
    actions: torch.Tensor  # (T, N) Discrete, (T, N, D) Box
    logprobs: torch.Tensor  # (T, N) log pi_old(a|s) at sampling time
    values: torch.Tensor  # (T, N) V_old(s) at sampling time
    rewards: torch.Tensor  # (T, N)
    terminated: torch.Tensor  # (T, N) float 0/1
    truncated: torch.Tensor  # (T, N) float 0/1
    next_obs: torch.Tensor  # (T, N, *obs_shape), true final observation at episode ends
    policy_version: int  # the weights version every batch was sampled with
    episode_starts: torch.Tensor  # (T, N) float 0/1: obs[t] begins an episode (a recurrent memory resets there)
    initial_state: torch.Tensor | None = None  # (N, S) a recurrent actor's memory before step 0; None: feed-forward


def collate_rollouts(batches: list[RolloutBatch]) -> OnPolicyRollout:
    """Concatenate worker batches along the env axis (every worker samples the same T and version)."""
    versions = {b.policy_version for b in batches}
    assert len(versions) == 1, f"rollouts from several policy versions: {sorted(versions)}"

    def cat(arrays: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.concatenate(arrays, axis=1))

    logprobs = [b.logprobs for b in batches if b.logprobs is not None]
    values = [b.values for b in batches if b.values is not None]
    if len(logprobs) < len(batches) or len(values) < len(batches):
        raise ValueError("on-policy rollouts need the sampling-time logprobs and values (acted by an ActorCritic)")

    return OnPolicyRollout(
        obs=cat([b.obs for b in batches]),
        actions=cat([b.actions for b in batches]),
        logprobs=cat(logprobs),
        values=cat(values),
        rewards=cat([b.rewards for b in batches]),
        terminated=cat([b.terminated for b in batches]).float(),
        truncated=cat([b.truncated for b in batches]).float(),
        next_obs=cat([b.next_obs for b in batches]),
        policy_version=versions.pop(),
        episode_starts=cat([b.episode_starts for b in batches]).float(),
        initial_state=None if batches[0].initial_state is None else torch.from_numpy(np.concatenate([b.initial_state for b in batches])),
    )


@torch.no_grad()
def bootstrap_values(policy: ActorCritic, next_obs: torch.Tensor) -> torch.Tensor:
    """V(next_obs) (T, N) for the current policy; used where an episode is cut (truncation, rollout end)."""
    T, N = next_obs.shape[:2]
    return policy.value(next_obs.reshape(T * N, *next_obs.shape[2:])).reshape(T, N)


def explained_variance(values: torch.Tensor, returns: torch.Tensor) -> float:
    """1 - Var[returns - values] / Var[returns]: 1 is a perfect critic, <= 0 no better than a constant."""
    var = returns.var()
    return float("nan") if var == 0 else float(1.0 - (returns - values).var() / var)


def actor_critic_loss(
    policy: ActorCritic,
    b_obs: torch.Tensor,
    b_actions: torch.Tensor,
    b_advantages: torch.Tensor,
    b_returns: torch.Tensor,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Vanilla policy-gradient loss with a learned baseline (A2C, REINFORCE): all inputs flat (B, ...).

    L = -A * log pi(a|s) + vf_coef * (R - V(s))^2 - ent_coef * H[pi(.|s)]
    """
    dist, newvalue = policy(b_obs)
    logprob = dist.log_prob(b_actions)
    pg_loss = policy_gradient_loss(b_advantages, logprob)
    v_loss = (b_returns - newvalue).pow(2).mean()
    entropy = dist.entropy().mean()
    loss = pg_loss + vf_coef * v_loss - ent_coef * entropy
    return loss, {"pg_loss": pg_loss.detach(), "v_loss": v_loss.detach(), "entropy": entropy.detach()}
