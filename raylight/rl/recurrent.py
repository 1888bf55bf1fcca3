"""A recurrent actor-critic for partially observed tasks: recurrent PPO acts and learns with it.

As sb3-contrib's ``MlpLstmPolicy`` (``enable_critic_lstm``): observations pass a shared encoder (flatten for
vectors, Nature-CNN for images), then the actor's and the critic's own LSTM cells, then each one's MLP and
head. The memory of a batch of envs is one tensor (B, S): [h_pi, c_pi, h_v, c_v] side by side (S = 4 x
``lstm_hidden``; 2 x with ``shared_torso``, where the critic reads the actor's LSTM features). A memory is zeroed where
``episode_start`` is 1, before the step that reads the episode's first observation. Plain torch: rollout
actors build it through ``ActorSpec`` without importing Lightning.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from pydantic import Field
from torch import nn

from raylight.rl.acting import ActorOutput, Exploration
from raylight.rl.actor_critic import PolicyNetConfig
from raylight.rl.distributions import Distribution, build_policy_head
from raylight.rl.networks import MLP, build_torso, layer_init, pytorch_default_init


class RecurrentPolicyNetConfig(PolicyNetConfig):
    """The network fields of a recurrent policy-gradient agent (``RecurrentPPOConfig`` extends it)."""

    lstm_hidden: int = Field(64, ge=1, description="LSTM hidden size (of the actor's and, unless shared_torso, the critic's LSTM).")


class RecurrentActorCritic(nn.Module):
    """(obs (B, *obs_shape), memory (B, S), episode_start (B,)) -> (action distribution, value (B,), next memory (B, S))."""

    def __init__(self, obs_space: gym.Space, act_space: gym.Space, net: RecurrentPolicyNetConfig) -> None:
        super().__init__()
        H = net.lstm_hidden
        self.hidden_size = H
        self.encoder = build_torso(obs_space, [], net.activation, net=net)  # flatten (vectors) or Nature-CNN (images)
        self.lstm_pi = nn.LSTM(self.encoder.out_dim, H)
        self.lstm_v = None if net.shared_torso else nn.LSTM(self.encoder.out_dim, H)
        self.mlp_pi = MLP(H, net.hidden, activation=net.activation)
        self.mlp_v = MLP(H, net.critic_hidden or net.hidden, activation=net.activation)
        self.pi = build_policy_head(act_space, self.mlp_pi.out_dim, net.log_std_init, state_dependent_std=net.log_std == "state_dependent")
        self.v = layer_init(nn.Linear(self.mlp_v.out_dim, 1), gain=1.0)
        if net.ortho_init:
            for lstm in (self.lstm_pi, self.lstm_v):
                if lstm is not None:
                    for name, param in lstm.named_parameters():
                        (nn.init.orthogonal_ if name.startswith("weight") else nn.init.zeros_)(param)
        else:
            pytorch_default_init(self)

    @property
    def state_size(self) -> int:
        return (2 if self.lstm_v is None else 4) * self.hidden_size

    def initial_state(self, num_envs: int) -> torch.Tensor:
        return torch.zeros(num_envs, self.state_size)

    def _unroll(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both LSTMs over encoded steps x (L, B, F) from memory (B, S) with no reset inside:
        actor features (L, B, H), critic features (L, B, H), memory after the last step (B, S)."""
        H = self.hidden_size
        h = state.reshape(state.shape[0], -1, H).transpose(0, 1).contiguous()  # (S / H, B, H): h_pi, c_pi[, h_v, c_v]
        f_pi, (h_pi, c_pi) = self.lstm_pi(x, (h[0:1], h[1:2]))
        if self.lstm_v is None:
            return f_pi, f_pi, torch.cat([h_pi[0], c_pi[0]], dim=1)
        f_v, (h_v, c_v) = self.lstm_v(x, (h[2:3], h[3:4]))
        return f_pi, f_v, torch.cat([h_pi[0], c_pi[0], h_v[0], c_v[0]], dim=1)

    def _encode(self, obs: torch.Tensor) -> torch.Tensor:
        """(L, B, *obs_shape) -> (L, B, F)."""
        L, B = obs.shape[:2]
        return self.encoder(obs.reshape(L * B, *obs.shape[2:])).reshape(L, B, -1)

    def _value(self, f_v: torch.Tensor) -> torch.Tensor:
        return self.v(self.mlp_v(f_v)).squeeze(-1)

    def forward(self, obs: torch.Tensor, state: torch.Tensor, episode_start: torch.Tensor) -> tuple[Distribution, torch.Tensor, torch.Tensor]:
        """One step for a batch of envs; a memory is zeroed where its episode starts."""
        state = state * (1.0 - episode_start.to(state.dtype)).unsqueeze(1)
        f_pi, f_v, next_state = self._unroll(self._encode(obs.unsqueeze(0)), state)
        return self.pi(self.mlp_pi(f_pi[0])), self._value(f_v[0]), next_state

    def sequence(
        self, obs: torch.Tensor, state: torch.Tensor, episode_starts: torch.Tensor, next_obs: torch.Tensor | None = None
    ) -> tuple[Distribution, torch.Tensor, torch.Tensor | None]:
        """Unroll over a rollout (backpropagation through its T steps): obs (T, N, ...), memory before step 0 (N, S),
        episode_starts (T, N) -> distribution over the (T*N) actions (t-major), values (T*N,) and, given ``next_obs``,
        V of each step's true next observation (T, N) read with the memory after that step.

        The LSTMs run whole chunks between the time steps where some env's episode starts (one fused call each);
        every episode end closes a chunk, so V(s') at an end is read from the chunk's final memory, and inside a
        chunk V(s'_t) = V(s_{t+1})."""
        T, N = episode_starts.shape
        x = self._encode(obs)  # (T, N, F)
        bounds = [0, *(torch.nonzero(episode_starts[1:].any(dim=1)).flatten() + 1).tolist(), T]
        f_pi, f_v, next_values = [], [], []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            state = state * (1.0 - episode_starts[a].to(state.dtype)).unsqueeze(1)
            chunk_pi, chunk_v, state = self._unroll(x[a:b], state)
            f_pi.append(chunk_pi)
            f_v.append(chunk_v)
            if next_obs is not None:
                with torch.no_grad():
                    _, end_v, _ = self._unroll(self._encode(next_obs[b - 1 : b]), state)
                    next_values.append((b - 1, self._value(end_v[0])))
        values = self._value(torch.cat(f_v).flatten(0, 1)).reshape(T, N)  # (T, N)
        dist = self.pi(self.mlp_pi(torch.cat(f_pi).flatten(0, 1)))
        nv = None
        if next_obs is not None:
            nv = torch.empty_like(values)
            nv[:-1] = values[1:].detach()
            for t, v in next_values:
                nv[t] = v
        return dist, values.flatten(), nv

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, explore: Exploration = Exploration(), deterministic: bool = False,
        state: torch.Tensor | None = None, episode_start: torch.Tensor | None = None,
    ) -> ActorOutput[torch.Tensor]:
        """Sampled (or modal) actions with log-probs and values, and the memory after this step."""
        if explore.epsilon is not None:
            raise ValueError("RecurrentActorCritic explores by sampling its policy; Exploration.epsilon is for Q-networks")
        B = obs.shape[0]
        state = self.initial_state(B).to(obs.device) if state is None else state
        episode_start = torch.zeros(B, device=obs.device) if episode_start is None else episode_start
        dist, value, next_state = self.forward(obs, state, episode_start)
        actions = dist.mode() if deterministic else dist.sample()
        return ActorOutput(actions, logprobs=dist.log_prob(actions), values=value, state=next_state)


def build_recurrent_actor_critic(net: RecurrentPolicyNetConfig, obs_space: gym.Space, act_space: gym.Space) -> RecurrentActorCritic:
    """The acting (and learning) network of recurrent PPO."""
    return RecurrentActorCritic(obs_space, act_space, net)
