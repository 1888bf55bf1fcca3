"""Reinforcement learning: rollout workers, experience modes, the algorithms (``raylight.rl.agents``) and the RL ``Task``.

Kept empty so ``import raylight.rl`` is cheap; the core reaches this package only through entry points."""
