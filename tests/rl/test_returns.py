"""Known-answer tests for the return math: td_target, gae (with a truncated episode), reward-to-go."""

import torch

from raylight.rl.returns import discounted_returns, gae, td_target


def col(*xs: float) -> torch.Tensor:
    """A (T, 1) time-major column."""
    return torch.tensor(xs, dtype=torch.float32).unsqueeze(1)


def test_td_target() -> None:
    out = td_target(torch.tensor([1.0, 2.0]), torch.tensor([0.9, 0.0]), torch.tensor([10.0, 10.0]))
    torch.testing.assert_close(out, torch.tensor([10.0, 2.0]))


# One env, T = 5: an episode TRUNCATED at t=1 (time limit), a new one TERMINATED at t=3, and a
# third still running when the rollout ends at t=4.
GAMMA, LAM = 0.9, 0.5
REWARDS = col(1.0, 2.0, 3.0, 4.0, 5.0)
VALUES = col(0.5, 1.0, 1.5, 2.0, 2.5)
NEXT_VALUES = col(1.0, 10.0, 2.0, 99.0, 3.0)  # V(s'): 10 = true final obs of the truncated episode
TERMINATED = col(0, 0, 0, 1, 0)
TRUNCATED = col(0, 1, 0, 0, 0)


def test_gae_known_answer_with_truncation_and_termination() -> None:
    # delta_t = r + g * V(s') * (1 - term) - V(s):
    d0 = 1 + 0.9 * 1.0 - 0.5  # 1.4
    d1 = 2 + 0.9 * 10.0 - 1.0  # 10.0  truncated: bootstrap from the final obs
    d2 = 3 + 0.9 * 2.0 - 1.5  # 3.3
    d3 = 4 + 0.0 - 2.0  # 2.0   terminated: V(s') = 99 must be ignored
    d4 = 5 + 0.9 * 3.0 - 2.5  # 5.2   rollout end: bootstrap
    # A_t = delta_t + g * lam * (1 - done_t) * A_{t+1}; episode ends cut the recursion.
    a4 = d4
    a3 = d3
    a2 = d2 + 0.45 * a3  # 4.2
    a1 = d1
    a0 = d0 + 0.45 * a1  # 5.9
    adv, ret = gae(REWARDS, VALUES, NEXT_VALUES, TERMINATED, TRUNCATED, GAMMA, LAM)
    torch.testing.assert_close(adv, col(a0, a1, a2, a3, a4))
    torch.testing.assert_close(ret, col(a0, a1, a2, a3, a4) + VALUES)


def test_gae_lambda_zero_is_the_one_step_td_error() -> None:
    adv, _ = gae(REWARDS, VALUES, NEXT_VALUES, TERMINATED, TRUNCATED, GAMMA, 0.0)
    torch.testing.assert_close(adv, REWARDS + GAMMA * NEXT_VALUES * (1 - TERMINATED) - VALUES)


def test_discounted_returns_known_answer() -> None:
    g4 = 5 + 0.9 * 3.0  # still running at the rollout end: bootstrap V(s') = 3
    g3 = 4.0  # terminated
    g2 = 3 + 0.9 * g3
    g1 = 2 + 0.9 * 10.0  # truncated: tail estimated by V(final obs) = 10
    g0 = 1 + 0.9 * g1
    out = discounted_returns(REWARDS, NEXT_VALUES, TERMINATED, TRUNCATED, GAMMA)
    torch.testing.assert_close(out, col(g0, g1, g2, g3, g4))


def test_gae_with_lambda_one_equals_reward_to_go() -> None:
    """With consistent values (V(s'_t) = V(s_{t+1}) inside episodes), GAE(1) returns are G_t."""
    torch.manual_seed(0)
    T, N = 50, 4
    rewards = torch.randn(T, N)
    terminated = (torch.rand(T, N) < 0.05).float()
    truncated = (torch.rand(T, N) < 0.05).float() * (1 - terminated)
    values = torch.randn(T, N)
    next_values = torch.randn(T, N)
    inside = (1 - torch.maximum(terminated, truncated))[:-1].bool()
    next_values[:-1][inside] = values[1:][inside]
    _, ret = gae(rewards, values, next_values, terminated, truncated, 0.97, 1.0)
    torch.testing.assert_close(ret, discounted_returns(rewards, next_values, terminated, truncated, 0.97))


def test_multiple_envs_are_independent_columns() -> None:
    args = (REWARDS, VALUES, NEXT_VALUES, TERMINATED, TRUNCATED)
    two = [torch.cat([x, x.flip(0)], dim=1) for x in args]
    adv2, _ = gae(*two, GAMMA, LAM)
    adv_a, _ = gae(*args, GAMMA, LAM)
    adv_b, _ = gae(*(x.flip(0) for x in args), GAMMA, LAM)
    torch.testing.assert_close(adv2, torch.cat([adv_a, adv_b], dim=1))
