"""Return and target math as pure functions: tensors in, tensors out, each with a known-answer test."""

from __future__ import annotations

import torch


def td_target(returns: torch.Tensor, discounts: torch.Tensor, next_values: torch.Tensor) -> torch.Tensor:
    """n-step TD target  G = sum_{i<k} gamma^i r_i + gamma^k * V(s_k), with gamma^k = 0 after termination.

    All arguments are (B,); ``discounts`` already holds gamma^k (0 where the episode terminated).
    """
    return returns + discounts * next_values


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2016) over a time-major rollout.

    All arguments are (T, N); ``next_values[t]`` is V of the observation after step t (the true
    final observation at an episode end). ``terminated``/``truncated`` are 0/1 floats.
        delta_t = r_t + gamma * V(s'_t) * (1 - terminated_t) - V(s_t)
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1},   A_T = 0
    so termination bootstraps nothing, truncation and the rollout's last step bootstrap V(s'_t),
    and no advantage leaks across an episode boundary. Returns (advantages, returns = A + V).
    ``lam = 1`` gives bootstrapped Monte-Carlo (n-step to the rollout end) advantages.
    """
    deltas = rewards + gamma * next_values * (1.0 - terminated) - values
    not_done = 1.0 - torch.maximum(terminated, truncated)
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        last = deltas[t] + gamma * lam * not_done[t] * last
        advantages[t] = last
    return advantages, advantages + values


def discounted_returns(
    rewards: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Reward-to-go  G_t = r_t + gamma * G_{t+1}  within each episode of a (T, N) rollout.

    Where an episode is cut rather than ended -- truncated at step t, or still running at the
    rollout's last step -- the tail is estimated by ``next_values[t]``; termination adds 0.
    """
    continues = 1.0 - torch.maximum(terminated, truncated)  # the episode goes on into step t+1 ...
    continues[-1] = 0.0  # ... but the rollout does not
    bootstrap = 1.0 - torch.maximum(terminated, continues)  # cut here: truncated, or running at the end
    returns = torch.zeros_like(rewards)
    future = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        future = rewards[t] + gamma * (continues[t] * future + bootstrap[t] * next_values[t])
        returns[t] = future
    return returns


def vtrace(
    behaviour_logprobs: torch.Tensor,
    target_logprobs: torch.Tensor,
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float = 1.0,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    pg_rho_bar: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace targets and policy-gradient advantages (Espeholt et al. 2018, eq. 1 and section 4.2).

    All arguments are (T, N), time-major; log-probs are of the taken actions under the behaviour policy mu
    (sampling time) and the target policy pi (now); ``next_values[t]`` is V of the true next observation.
    With rho_t = min(rho_bar, pi/mu) and c_t = lam * min(c_bar, pi/mu):
        delta_t = rho_t * (r_t + gamma * V(s'_t) * (1 - terminated_t) - V(s_t))
        v_t - V(s_t) = delta_t + gamma * c_t * (1 - done_t) * (v_{t+1} - V(s_{t+1})),   zero after the rollout
        A_t = min(pg_rho_bar, pi/mu) * (r_t + gamma * v'_t - V(s_t))
    where v'_t is v_{t+1} inside an episode, V(s'_t) where it is cut (truncation, the rollout's end) and 0 after
    termination. With pi = mu, rho_bar, c_bar >= 1, v is GAE(lam)'s returns; A is GAE's advantage for lam = 1 (n-step)
    and, for lam < 1, weighs every TD error after the first by 1/lam more (Espeholt et al.'s definition, as RLlib).
    Returns (v (T, N), A (T, N)), without gradient.
    """
    with torch.no_grad():
        ratio = (target_logprobs - behaviour_logprobs).exp()
        rho = ratio.clamp(max=rho_bar)
        c = lam * ratio.clamp(max=c_bar)
        not_terminated = 1.0 - terminated
        not_done = 1.0 - torch.maximum(terminated, truncated)
        deltas = rho * (rewards + gamma * next_values * not_terminated - values)
        vs_minus_v = torch.zeros_like(rewards)
        acc = torch.zeros_like(rewards[0])
        for t in reversed(range(rewards.shape[0])):
            acc = deltas[t] + gamma * c[t] * not_done[t] * acc
            vs_minus_v[t] = acc
        vs = values + vs_minus_v
        # v'_t: the next step's target inside an episode, V(s'_t) where the episode or the rollout is cut.
        next_vs = next_values.clone()
        next_vs[:-1] = torch.where(not_done[:-1] > 0, vs[1:], next_values[:-1])
        advantages = ratio.clamp(max=pg_rho_bar) * (rewards + gamma * not_terminated * next_vs - values)
    return vs, advantages
