"""Known-answer tests for the return math: td_target, gae (with a truncated episode), reward-to-go."""

import torch

from raylight.rl.returns import discounted_returns, gae, td_target, vtrace


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


def _col(*xs: float) -> torch.Tensor:
    return torch.tensor(xs).unsqueeze(1)  # (T, 1)


def test_vtrace_known_answer_worked_by_hand() -> None:
    """pi/mu = 2, 0.5, 1; gamma 0.5; rho_bar = c_bar = 1: rho = c = (1, 0.5, 1).
    deltas 0.5, 0.75, 3 -> v = (2.25, 2.5, 4); A_t = rho_t (r_t + gamma v_{t+1} - V) = (1.25, 1.5, 3)."""
    mu = torch.zeros(3, 1)
    pi = torch.log(_col(2.0, 0.5, 1.0))
    zeros = torch.zeros(3, 1)
    vs, adv = vtrace(mu, pi, _col(1.0, 2.0, 3.0), _col(1.0, 1.0, 1.0), _col(1.0, 1.0, 2.0), zeros, zeros, gamma=0.5)
    torch.testing.assert_close(vs, _col(2.25, 2.5, 4.0))
    torch.testing.assert_close(adv, _col(1.25, 1.5, 3.0))


def test_vtrace_matches_the_papers_sum_of_products() -> None:
    """v_s = V(x_s) + sum_t gamma^(t-s) (prod_{s<=i<t} c_i) delta_t (Espeholt et al. 2018, eq. 1), as a plain loop."""
    g = torch.Generator().manual_seed(0)
    T, N, gamma, lam, rho_bar, c_bar = 6, 3, 0.9, 0.95, 1.0, 0.9
    mu, pi = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g)
    rewards, values = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g)
    next_values = torch.cat([values[1:], torch.randn(1, N, generator=g)])
    zeros = torch.zeros(T, N)
    vs, _ = vtrace(mu, pi, rewards, values, next_values, zeros, zeros, gamma, lam, rho_bar, c_bar)
    ratio = (pi - mu).exp()
    rho, c = ratio.clamp(max=rho_bar), lam * ratio.clamp(max=c_bar)
    expected = torch.zeros(T, N)
    for n in range(N):
        for s in range(T):
            total = values[s, n].item()
            for t in range(s, T):
                delta = rho[t, n] * (rewards[t, n] + gamma * next_values[t, n] - values[t, n])
                total += gamma ** (t - s) * torch.prod(c[s:t, n]).item() * delta.item()
            expected[s, n] = total
    torch.testing.assert_close(vs, expected)


def test_vtrace_on_policy_reduces_to_gae_and_n_step_returns() -> None:
    """pi = mu: v-trace targets are GAE(lambda)'s returns, across a termination and a truncation; with lambda 1 the
    policy-gradient advantages are the n-step (to the rollout's end) advantages."""
    g = torch.Generator().manual_seed(1)
    T, N = 7, 2
    rewards, values = torch.randn(T, N, generator=g), torch.randn(T, N, generator=g)
    terminated, truncated = torch.zeros(T, N), torch.zeros(T, N)
    terminated[2, 0] = 1.0
    truncated[4, 1] = 1.0
    next_values = torch.cat([values[1:], torch.randn(1, N, generator=g)])
    next_values[4, 1] = 0.7  # the truncated episode's true final observation, not the next episode's first
    logp = torch.randn(T, N, generator=g)
    for lam in (1.0, 0.9):
        vs, adv = vtrace(logp, logp, rewards, values, next_values, terminated, truncated, 0.99, lam)
        gae_adv, gae_returns = gae(rewards, values, next_values, terminated, truncated, 0.99, lam)
        torch.testing.assert_close(vs, gae_returns)
        if lam == 1.0:
            torch.testing.assert_close(adv, gae_adv)
