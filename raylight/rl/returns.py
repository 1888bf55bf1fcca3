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
