"""A trained policy for use from Python: ``raylight.load_policy(run).act(obs_batch) -> env actions``.

The same greedy mapping ``raylight evaluate`` and ``raylight export`` use (``rl.export.GreedyPolicy``): frozen
observation normalization, the deterministic head, the action mapping (Discrete ``start`` shift, Box clipping).
A recurrent policy keeps one memory row per observation row between calls; ``episode_start`` marks the rows
whose episode begins with this observation, and ``reset`` forgets everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from raylight.core.checkpoints import find_checkpoint
from raylight.core.errors import ConfigError
from raylight.rl.export import GreedyPolicy, RecurrentGreedyPolicy


class Policy:
    """obs batch (B, *obs_shape), as the env returns it -> env actions (B,) or (B, D) as a numpy array."""

    def __init__(self, policy: GreedyPolicy, obs_space: gym.Space, action_space: gym.Space, env_id: str, checkpoint: Path) -> None:
        self._policy = policy
        self._acting: Any = policy.actor  # an acting network (rl.acting contract): initial_state(n) -> (n, S) | None
        self.observation_space = obs_space
        self.action_space = action_space
        self.env_id = env_id
        self.checkpoint = checkpoint
        self.recurrent = isinstance(policy, RecurrentGreedyPolicy)
        self.state: torch.Tensor | None = None  # recurrent memory (B, S) after the last call

    def reset(self) -> None:
        """Forget the recurrent memory: the next ``act`` starts every row's episode afresh."""
        self.state = None

    @torch.no_grad()
    def act(self, obs: Any, episode_start: Any = None) -> np.ndarray:
        """Greedy env actions for a batch of observations; ``episode_start`` (B,) resets those rows' memory."""
        batch = torch.as_tensor(np.asarray(obs))
        if batch.ndim == len(self.observation_space.shape or ()):
            raise ConfigError(f"act: expected a batch of observations (B, {', '.join(map(str, batch.shape))}), got one observation")
        if not self.recurrent:
            return self._policy(batch).numpy()
        n = len(batch)
        starts = torch.zeros(n) if episode_start is None else torch.as_tensor(np.asarray(episode_start), dtype=torch.float32)
        if self.state is None or len(self.state) != n:
            self.state, starts = self._acting.initial_state(n), torch.ones(n)
        actions, self.state = self._policy(batch, self.state, starts)
        return actions.numpy()

    def __repr__(self) -> str:
        kind = "recurrent " if self.recurrent else ""
        return f"Policy({kind}{self.env_id}, {self.checkpoint})"


def load_policy(run_or_ckpt: str | Path, which: str = "best", env_id: str | None = None, trust_checkpoint_env: bool = False) -> Policy:
    """The greedy policy of a run's ``which`` checkpoint (``best`` by eval return, or ``last``) or of a checkpoint file."""
    from raylight.rl.inference import load_agent

    checkpoint = find_checkpoint(run_or_ckpt, which)
    module = load_agent(checkpoint, env_id, trust_checkpoint_env)
    actor = module.cpu_actor()
    recurrent = actor.initial_state(1) is not None
    wrap = RecurrentGreedyPolicy if recurrent else GreedyPolicy
    greedy = wrap(actor, module.act_space, module.cfg.env.clip_actions).eval().requires_grad_(False)
    return Policy(greedy, module.obs_space, module.act_space, module.cfg.env.id, checkpoint)
