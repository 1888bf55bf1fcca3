"""Recurrent PPO: PPO with an LSTM policy for partially observed tasks (as sb3-contrib's ``RecurrentPPO`` and
CleanRL's ``ppo_atari_lstm.py``).

The same clipped-surrogate update as ``raylight.rl.agents.ppo``; what changes is how a minibatch is read:
  - workers carry each env's LSTM memory from step to step and across rollouts, zeroing it where an
    episode starts, and return each env column's memory at the rollout's first step;
  - minibatches are whole env columns (``minibatch_size // n_steps`` columns), unrolled from that memory
    over the rollout's T steps with the resets in place (truncated backpropagation through time);
  - V(s') for GAE is read with the memory after each step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from pydantic import Field

from raylight.core.errors import ConfigError
from raylight.core.registry import register_algorithm
from raylight.rl.actor_critic import OnPolicyRollout
from raylight.rl.agents.ppo import PPO, PPOConfig
from raylight.rl.config import RLExperimentConfig
from raylight.rl.recurrent import RecurrentPolicyNetConfig, build_recurrent_actor_critic
from raylight.rl.task import RL_TASK


class RecurrentPPOConfig(PPOConfig):
    lstm_hidden: int = Field(64, ge=1, description="LSTM hidden size (of the actor's and, unless shared_torso, the critic's LSTM).")


@register_algorithm("recurrent_ppo", RecurrentPPOConfig, RL_TASK)
class RecurrentPPO(PPO):
    actor_config = RecurrentPolicyNetConfig
    build_actor = staticmethod(build_recurrent_actor_critic)

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__(cfg, obs_space, act_space)
        self.envs_per_minibatch = self.hp.minibatch_size // self.hp.n_steps
        if self.envs_per_minibatch < 1:
            raise ConfigError(
                f"agent.minibatch_size: recurrent PPO trains on whole env columns of n_steps={self.hp.n_steps} steps; "
                f"minibatch_size={self.hp.minibatch_size} must be at least n_steps"
            )

    def next_values(self, batch: OnPolicyRollout) -> torch.Tensor:
        with torch.no_grad():
            _, _, next_values = self.policy.sequence(batch.obs, batch.initial_state, batch.episode_starts, batch.next_obs)
        return next_values  # (T, N)

    def minibatches(self, batch: OnPolicyRollout) -> list[torch.Tensor]:
        """Shuffled env columns, ``minibatch_size // n_steps`` per minibatch."""
        N = batch.rewards.shape[1]
        perm = torch.randperm(N, device=batch.rewards.device)
        return [perm[start : start + self.envs_per_minibatch] for start in range(0, N, self.envs_per_minibatch)]

    def minibatch_forward(self, batch: OnPolicyRollout, cols: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Unroll columns ``cols`` from their first memory; flat index of step t, column n: t * N + n."""
        T, N = batch.rewards.shape
        dist, values, _ = self.policy.sequence(batch.obs[:, cols], batch.initial_state[cols], batch.episode_starts[:, cols])
        flat = (torch.arange(T, device=cols.device).unsqueeze(1) * N + cols.unsqueeze(0)).flatten()  # (T*len(cols),) t-major
        return dist, values, flat
