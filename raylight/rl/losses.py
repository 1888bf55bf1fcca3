"""Loss math as pure functions: tensors in, tensors out, no networks, each with a known-answer test.

The agents call these from ``training_step``; keeping the formulas here means a sign or a clip
bound can be checked against hand-worked numbers (tests/rl/test_losses.py) without training.
"""

from __future__ import annotations

import math

import torch

from raylight.rl.returns import td_target


def policy_gradient_loss(advantages: torch.Tensor, logprobs: torch.Tensor) -> torch.Tensor:
    """Vanilla policy-gradient loss  -mean(A * log pi(a|s))  (REINFORCE, A2C); all (B,).

    Minimizing it raises the log-probability of actions with positive advantage.
    """
    return -(advantages * logprobs).mean()


def ppo_clipped_surrogate(advantages: torch.Tensor, ratio: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """PPO's clipped surrogate as a loss (Schulman et al. 2017, eq. 7, negated): all (B,).

        L = mean(max(-A * r, -A * clip(r, 1 - eps, 1 + eps)))

    The max of the negated terms is the pessimistic bound: the policy gains nothing from pushing
    the ratio r = pi/pi_old past 1 + eps when A > 0, or below 1 - eps when A < 0 (as SB3/CleanRL).
    """
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
    return torch.max(unclipped, clipped).mean()


def decoupled_ratio(
    logprobs: torch.Tensor, behaviour_logprobs: torch.Tensor, proximal_logprobs: torch.Tensor, is_clip: float = 2.0
) -> torch.Tensor:
    """APPO's surrogate ratio when the data is older than the policy it trains (IMPACT, Luo et al. 2020; RLlib's
    APPO; Hilton et al. 2021's "decoupled" PPO); all (B,) log-probs of the taken actions.

        r = clip(mu / pi_prox, 0, is_clip) * pi / mu     (= pi / pi_prox wherever the clip does not bind)

    The trust region is centred on the proximal policy pi_prox (the weights before this update), not on the
    behaviour policy mu that sampled the data: a rollout a few versions old would otherwise start the update with
    most ratios outside [1 - eps, 1 + eps] and pull the policy back towards mu. The truncated weight mu / pi_prox
    keeps the estimate importance-corrected for what mu and pi_prox disagree on (V-trace's advantages do the rest).
    """
    is_ratio = (behaviour_logprobs - proximal_logprobs).exp().clamp(0.0, is_clip)
    return is_ratio * (logprobs - behaviour_logprobs).exp()


def ppo_value_loss(
    new_values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_range_vf: float | None
) -> torch.Tensor:
    """PPO's value loss  0.5 * mean((V - R)^2); all (B,).

    With ``clip_range_vf``, V is also clipped to old V +- clip_range_vf and the larger of the two
    squared errors is kept (CleanRL's ``clip_vloss``): a value step that leaves the trust region
    earns no credit for it. ``old_values`` are V at sampling time.
    """
    unclipped = (new_values - returns).pow(2)
    if clip_range_vf is None:
        return 0.5 * unclipped.mean()
    v_clipped = old_values + (new_values - old_values).clamp(-clip_range_vf, clip_range_vf)
    return 0.5 * torch.max(unclipped, (v_clipped - returns).pow(2)).mean()


def approx_kl(logratio: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi) estimated as mean((r - 1) - log r), r = exp(logratio) (Schulman 2020, "k3").

    Unbiased and never negative, unlike mean(-log r); PPO's early stop watches it.
    """
    ratio = logratio.exp()
    return ((ratio - 1) - logratio).mean()


def clip_fraction(ratio: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """Share of samples whose ratio lies outside [1 - eps, 1 + eps] (a PPO health metric)."""
    return ((ratio - 1.0).abs() > clip_coef).float().mean()


def dqn_td_target(
    returns: torch.Tensor,
    discounts: torch.Tensor,
    next_q_online: torch.Tensor | None,
    next_q_target: torch.Tensor,
    double_q: bool,
) -> torch.Tensor:
    """(Double) DQN target  G + gamma^k * Q_target(s', a'); returns and discounts (B,), Q values (B, A).

    Vanilla DQN takes a' = argmax Q_target(s', .), the max of the target net's own noisy estimates,
    which biases the target upward. Double DQN (van Hasselt et al. 2016) lets the online net pick
    a' = argmax Q_online(s', .) and the target net score it. ``discounts`` is 0 after termination.
    """
    if double_q:
        if next_q_online is None:
            raise ValueError("double_q needs next_q_online: the online net's Q(s', .) picks the action")
        next_actions = next_q_online.argmax(dim=1, keepdim=True)  # (B, 1)
        next_q = next_q_target.gather(1, next_actions).squeeze(1)  # (B,)
    else:
        next_q = next_q_target.max(dim=1).values  # (B,)
    return td_target(returns, discounts, next_q)


def tanh_log_prob_correction(pre_tanh: torch.Tensor) -> torch.Tensor:
    """log |d tanh(u) / du| summed over action dims: log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)); (B, D) -> (B,).

    A squashed Gaussian a = tanh(u), u ~ N(mu, sigma), has log pi(a) = log N(u) - this (Haarnoja et al. 2018,
    appendix C). The softplus form stays finite where 1 - tanh(u)^2 underflows to 0 (|u| > ~9 in float32)."""
    return (2.0 * (math.log(2.0) - pre_tanh - torch.nn.functional.softplus(-2.0 * pre_tanh))).sum(-1)


def soft_q_target(
    rewards: torch.Tensor, discounts: torch.Tensor, next_q1: torch.Tensor, next_q2: torch.Tensor,
    next_logprobs: torch.Tensor, alpha: torch.Tensor | float,
) -> torch.Tensor:
    """SAC's critic target  r + gamma^n (1 - done) (min(Q1', Q2') - alpha log pi(a'|s')); all (B,).

    The min of the twin target critics counters overestimation (clipped double Q, Fujimoto et al. 2018); the
    entropy term makes the value soft. ``discounts`` already holds gamma^n (1 - done) per transition."""
    return rewards + discounts * (torch.min(next_q1, next_q2) - alpha * next_logprobs)


def smoothed_target_actions(
    target_actions: torch.Tensor, noise: torch.Tensor, noise_clip: torch.Tensor | float,
    low: torch.Tensor, high: torch.Tensor,
) -> torch.Tensor:
    """TD3's target policy smoothing: clip(mu'(s') + clip(noise, -c, c), low, high); (B, D).

    ``noise`` is already scaled (sigma times the action half-range), ``noise_clip`` likewise; the target policy is
    smoothed over nearby actions so the critic cannot exploit a sharp peak (Fujimoto et al. 2018, eq. 15)."""
    clipped = torch.maximum(torch.minimum(noise, torch.as_tensor(noise_clip)), -torch.as_tensor(noise_clip))
    return torch.maximum(torch.minimum(target_actions + clipped, high), low)


def entropy_temperature_loss(log_alpha: torch.Tensor, logprobs: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """SAC's automatic temperature loss  -mean(log alpha * (log pi(a|s) + H_target))  (Haarnoja et al. 2018b, eq. 18,
    in log alpha as SB3/CleanRL): alpha grows while the policy's entropy -log pi is below the target, shrinks above."""
    return -(log_alpha * (logprobs.detach() + target_entropy)).mean()
