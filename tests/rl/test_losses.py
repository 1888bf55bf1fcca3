"""Known-answer tests for the loss math (numbers worked out by hand) and naive-loop references."""

import itertools
import math

import pytest
import torch

from raylight.rl.losses import (
    approx_kl,
    clip_fraction,
    decoupled_ratio,
    dqn_td_target,
    policy_gradient_loss,
    ppo_clipped_surrogate,
    ppo_value_loss,
)


def t(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float32)


# --- PPO clipped surrogate, eps = 0.2 -----------------------------------------------------------
# A      r     -A*r   -A*clip(r)   max    clip binds?
# +1    1.5    -1.5      -1.2      -1.2   yes: no credit for pushing r above 1 + eps
# +1    0.5    -0.5      -0.8      -0.5   no: the pessimistic (unclipped) term is kept
# -1    1.5     1.5       1.2       1.5   no
# -1    0.5     0.5       0.8       0.8   yes: no credit for pushing r below 1 - eps
# +2    1.1    -2.2      -2.2      -2.2   inside the trust region: both equal
SURR_A = t(1.0, 1.0, -1.0, -1.0, 2.0)
SURR_R = t(1.5, 0.5, 1.5, 0.5, 1.1)


def test_clipped_surrogate_known_answer() -> None:
    loss = ppo_clipped_surrogate(SURR_A, SURR_R, 0.2)
    torch.testing.assert_close(loss, torch.tensor((-1.2 - 0.5 + 1.5 + 0.8 - 2.2) / 5))  # -0.32


def test_clipped_surrogate_has_no_gradient_where_the_clip_binds() -> None:
    ratio = SURR_R.clone().requires_grad_(True)
    ppo_clipped_surrogate(SURR_A, ratio, 0.2).backward()
    # d/dr of -A*r/5 where unclipped wins; 0 where the clipped (constant) term wins.
    torch.testing.assert_close(ratio.grad, t(0.0, -1.0, 1.0, 0.0, -2.0) / 5)


def test_clipped_surrogate_matches_the_papers_min_form_on_a_grid() -> None:
    """Loop reference: L^CLIP = min(r * A, clip(r, 1 - eps, 1 + eps) * A) per sample, loss = -mean."""
    eps = 0.2
    grid = list(itertools.product([-2.0, -0.5, 0.0, 0.5, 2.0], [0.5, 0.79, 0.81, 1.0, 1.19, 1.21, 1.5]))
    expected = 0.0
    for a, r in grid:
        expected -= min(r * a, min(max(r, 1 - eps), 1 + eps) * a)
    expected /= len(grid)
    adv, ratio = (torch.tensor(col, dtype=torch.float64) for col in zip(*grid, strict=True))
    torch.testing.assert_close(ppo_clipped_surrogate(adv, ratio, eps), torch.tensor(expected, dtype=torch.float64))


# --- PPO value loss, R = 1, V_old = 0, clip_range_vf = 0.2 ----------------------------------------
# V_new   (V-R)^2   V_clip   (V_clip-R)^2   kept with clipping
#  0.5     0.25      0.2       0.64          0.64  (clip binds: the step past V_old + 0.2 earns nothing)
#  2.0     1.00      0.2       0.64          1.00  (unclipped error is larger: kept)
#  0.1     0.81      0.1       0.81          0.81  (inside the range: both equal)
V_NEW = t(0.5, 2.0, 0.1)
V_OLD = t(0.0, 0.0, 0.0)
RETURNS = t(1.0, 1.0, 1.0)


# --- APPO's decoupled ratio: clip(mu / pi_old, 0, 2) * pi / mu ---------------------------------------
# pi    mu    pi_old   mu/pi_old (clipped)   pi/mu   ratio
# 0.5   0.25  0.4      0.625                 2.0     1.25   = pi / pi_old: the trust region is centred on pi_old
# 0.45  0.9   0.3      3 -> 2                0.5     1.0    the importance weight is truncated at 2
# 0.2   0.2   0.2      1                     1.0     1.0    on-policy and before any step: PPO's ratio of 1
def test_decoupled_ratio_known_answer_centres_on_the_proximal_policy() -> None:
    pi, mu, old = t(0.5, 0.45, 0.2).log(), t(0.25, 0.9, 0.2).log(), t(0.4, 0.3, 0.2).log()
    torch.testing.assert_close(decoupled_ratio(pi, mu, old), t(1.25, 1.0, 1.0))


def test_decoupled_ratio_reduces_to_ppos_ratio_on_fresh_data_and_differentiates_through_pi_only() -> None:
    pi = t(0.1, 0.7, 0.2).log().requires_grad_(True)
    mu = t(0.3, 0.6, 0.1).log()
    ratio = decoupled_ratio(pi, mu, mu)  # behaviour = proximal policy: PPO's pi / pi_old
    torch.testing.assert_close(ratio, (pi - mu).exp())
    ratio.sum().backward()
    torch.testing.assert_close(pi.grad, ratio.detach())  # d r / d log pi = r


def test_value_loss_without_clipping_is_half_mse() -> None:
    loss = ppo_value_loss(V_NEW, V_OLD, RETURNS, None)
    torch.testing.assert_close(loss, torch.tensor(0.5 * (0.25 + 1.0 + 0.81) / 3))


def test_value_loss_with_clipping_keeps_the_larger_error() -> None:
    new = V_NEW.clone().requires_grad_(True)
    loss = ppo_value_loss(new, V_OLD, RETURNS, 0.2)
    torch.testing.assert_close(loss, torch.tensor(0.5 * (0.64 + 1.0 + 0.81) / 3))
    loss.backward()
    # d/dV of 0.5 * (V - R)^2 / 3 = (V - R) / 3, except 0 where the clipped (saturated) error won.
    torch.testing.assert_close(new.grad, t(0.0, 1.0, -0.9) / 3)


def test_value_loss_matches_a_loop_reference_on_a_grid() -> None:
    clip = 0.3
    grid = list(itertools.product([-1.0, 0.0, 0.25, 2.0], [-0.5, 0.0, 0.5], [-1.0, 0.4, 3.0]))  # (V_new, V_old, R)
    expected = 0.0
    for v, v_old, r in grid:
        v_clip = v_old + min(max(v - v_old, -clip), clip)
        expected += 0.5 * max((v - r) ** 2, (v_clip - r) ** 2)
    expected /= len(grid)
    new, old, ret = (torch.tensor(col, dtype=torch.float64) for col in zip(*grid, strict=True))
    torch.testing.assert_close(ppo_value_loss(new, old, ret, clip), torch.tensor(expected, dtype=torch.float64))


# --- DQN targets -----------------------------------------------------------------------------------
# Sample 0: G = 1, gamma^k = 0.9. Online Q(s') = [1, 2, 0] picks action 1; target Q(s') = [3, 1, 4].
#   double:  1 + 0.9 * Q_target[1] = 1 + 0.9 * 1 = 1.9
#   vanilla: 1 + 0.9 * max Q_target = 1 + 0.9 * 4 = 4.6
# Sample 1: terminated (gamma^k = 0): the target is G = 0.5 whatever Q(s') says.
DQN_RETURNS = t(1.0, 0.5)
DQN_DISCOUNTS = t(0.9, 0.0)
NEXT_Q_ONLINE = torch.tensor([[1.0, 2.0, 0.0], [5.0, 0.0, 0.0]])
NEXT_Q_TARGET = torch.tensor([[3.0, 1.0, 4.0], [7.0, 8.0, 9.0]])


def test_double_and_vanilla_dqn_targets_pick_different_actions() -> None:
    double = dqn_td_target(DQN_RETURNS, DQN_DISCOUNTS, NEXT_Q_ONLINE, NEXT_Q_TARGET, double_q=True)
    vanilla = dqn_td_target(DQN_RETURNS, DQN_DISCOUNTS, None, NEXT_Q_TARGET, double_q=False)
    torch.testing.assert_close(double, t(1.9, 0.5))
    torch.testing.assert_close(vanilla, t(4.6, 0.5))
    # Vanilla ignores the online net even when given one.
    torch.testing.assert_close(dqn_td_target(DQN_RETURNS, DQN_DISCOUNTS, NEXT_Q_ONLINE, NEXT_Q_TARGET, False), vanilla)


def test_double_dqn_needs_the_online_q_values() -> None:
    with pytest.raises(ValueError, match="next_q_online"):
        dqn_td_target(DQN_RETURNS, DQN_DISCOUNTS, None, NEXT_Q_TARGET, double_q=True)


def test_dqn_targets_match_a_loop_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    returns, discounts = torch.randn(16, generator=gen), torch.rand(16, generator=gen)
    online, target = torch.randn(16, 4, generator=gen), torch.randn(16, 4, generator=gen)
    for double_q in (True, False):
        expected = []
        for i in range(16):
            q_t = target[i].tolist()
            if double_q:
                q_o = online[i].tolist()
                best = max(range(4), key=lambda a, q_o=q_o: q_o[a])
                next_q = q_t[best]
            else:
                next_q = max(q_t)
            expected.append(returns[i].item() + discounts[i].item() * next_q)
        out = dqn_td_target(returns, discounts, online, target, double_q)
        torch.testing.assert_close(out, torch.tensor(expected))


# --- the rest --------------------------------------------------------------------------------------
def test_approx_kl_known_answer_and_sign() -> None:
    # r = [1, 2]: (1 - 1 - log 1) = 0 and (2 - 1 - log 2) = 1 - ln 2; mean = (1 - ln 2) / 2.
    torch.testing.assert_close(approx_kl(t(0.0, math.log(2.0))), torch.tensor((1 - math.log(2.0)) / 2))
    logratio = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert approx_kl(logratio) >= 0 and approx_kl(torch.zeros(5)) == 0


def test_clip_fraction() -> None:
    assert clip_fraction(t(0.7, 0.9, 1.0, 1.25), 0.2) == 0.5  # 0.7 and 1.25 lie outside [0.8, 1.2]


def test_policy_gradient_loss_known_answer() -> None:
    # -(1 * -0.5 + -2 * -1.0) / 2 = -0.75: lowering it raises log pi where A > 0 and lowers it where A < 0.
    torch.testing.assert_close(policy_gradient_loss(t(1.0, -2.0), t(-0.5, -1.0)), torch.tensor(-0.75))
