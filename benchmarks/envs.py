"""Benchmark envs, loaded like any user env: env.id = 'benchmarks.envs:BusyCartPole'."""

from __future__ import annotations

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
