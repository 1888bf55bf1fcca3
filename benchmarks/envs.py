"""Benchmark envs, loaded like any user env: env.id = 'benchmarks.envs:BusyCartPole'."""

from __future__ import annotations

import random
import time

from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class BusyCartPole(CartPoleEnv):
    """CartPole whose step burns ``burn_ms`` of CPU: a stand-in for an expensive simulator."""

    def __init__(self, burn_ms: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.burn_s = burn_ms / 1000.0

    def step(self, action):
        deadline = time.perf_counter() + self.burn_s
        while time.perf_counter() < deadline:
            pass
        return super().step(action)


class JitterCartPole(CartPoleEnv):
    """CartPole whose step burns a uniformly random 0..``max_ms`` ms of CPU: a simulator with uneven step times,
    where a learner that waits for its slowest worker loses most."""

    def __init__(self, max_ms: float = 2.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_s = max_ms / 1000.0
        self._rng = random.Random()

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng.seed(seed)
        return super().reset(seed=seed, options=options)

    def step(self, action):
        deadline = time.perf_counter() + self._rng.uniform(0.0, self.max_s)
        while time.perf_counter() < deadline:
            pass
        return super().step(action)
