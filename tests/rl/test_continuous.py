"""SAC/TD3 pieces: the tanh-squash log-prob correction, the soft twin-min target, TD3's clipped smoothing, the
temperature loss (known answers), and the continuous actors and twin critics."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from raylight.core.errors import ConfigError
from raylight.rl.acting import Exploration
from raylight.rl.continuous import (
    ContinuousActorConfig,
    DeterministicActor,
    EnsembleLinear,
    SquashedGaussianActor,
    TwinQ,
)
from raylight.rl.losses import (
    entropy_temperature_loss,
    smoothed_target_actions,
    soft_q_target,
    tanh_log_prob_correction,
)

BOX = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))
OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)


def test_tanh_correction_known_answers() -> None:
    # u = 0: log(1 - tanh(0)^2) = log 1 = 0; u = atanh(0.5): log(1 - 0.25) = log 0.75; summed over dims.
    u = torch.tensor([[0.0, math.atanh(0.5)]])
    assert tanh_log_prob_correction(u).item() == pytest.approx(math.log(0.75), abs=1e-6)
    # Far in the tail 1 - tanh(u)^2 underflows to 0 in float32, the softplus form stays finite: ~ 2 (log 2 - |u|).
    tail = tanh_log_prob_correction(torch.tensor([[30.0], [-30.0]]))
    assert torch.isfinite(tail).all() and tail[0].item() == pytest.approx(2 * (math.log(2) - 30), abs=1e-4)


def test_squashed_log_prob_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    mean, std = torch.randn(64, 2), torch.rand(64, 2) + 0.1
    squashed = torch.distributions.TransformedDistribution(torch.distributions.Normal(mean, std), [torch.distributions.TanhTransform()])
    u = mean + std * torch.randn(64, 2)
    ours = torch.distributions.Normal(mean, std).log_prob(u).sum(-1) - tanh_log_prob_correction(u)
    torch.testing.assert_close(ours, squashed.log_prob(torch.tanh(u)).sum(-1), atol=1e-4, rtol=1e-4)


def test_soft_q_target_known_answer() -> None:
    # r + d * (min(q1, q2) - alpha * logp): 1 + 0.9 * (min(5, 3) - 0.2 * -2) = 1 + 0.9 * 3.4 = 4.06; terminal: r only.
    target = soft_q_target(torch.tensor([1.0, 1.0]), torch.tensor([0.9, 0.0]), torch.tensor([5.0, 5.0]),
                           torch.tensor([3.0, 3.0]), torch.tensor([-2.0, -2.0]), alpha=0.2)
    torch.testing.assert_close(target, torch.tensor([4.06, 1.0]))


def test_smoothed_target_actions_clip_the_noise_then_the_action() -> None:
    # noise 0.9 is clipped to 0.5; 0.8 + 0.5 = 1.3 is clipped to the bound 1; -0.2 + (-0.1) stays.
    actions = smoothed_target_actions(torch.tensor([[0.8], [-0.2]]), torch.tensor([[0.9], [-0.1]]), 0.5,
                                      torch.tensor([-1.0]), torch.tensor([1.0]))
    torch.testing.assert_close(actions, torch.tensor([[1.0], [-0.3]]))
    # per-dimension clip and bounds (noise clip already scaled to each dim's half-range)
    actions = smoothed_target_actions(torch.tensor([[0.0, 0.5]]), torch.tensor([[3.0, -3.0]]), torch.tensor([1.0, 0.25]),
                                      torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(actions, torch.tensor([[1.0, 0.25]]))


def test_temperature_loss_raises_alpha_when_entropy_is_below_target() -> None:
    log_alpha = torch.tensor(0.0, requires_grad=True)
    # entropy -logp = -1 below the target 2 (logp + H = 1 + 2 = 3 > 0): loss = -log_alpha * 3, gradient -3
    entropy_temperature_loss(log_alpha, torch.tensor([1.0, 1.0]), target_entropy=2.0).backward()
    assert log_alpha.grad.item() == pytest.approx(-3.0)  # gradient descent raises log alpha


def test_actors_map_into_the_box_and_explore_as_asked() -> None:
    torch.manual_seed(0)
    obs = torch.randn(512, 3) * 5
    low, high = torch.as_tensor(BOX.low), torch.as_tensor(BOX.high)
    sac = SquashedGaussianActor(OBS, BOX, ContinuousActorConfig(hidden=[16]))
    actions, logp = sac.sample(obs)
    assert actions.shape == (512, 2) and logp.shape == (512,)
    assert ((actions >= low) & (actions <= high)).all()
    greedy = sac.act(obs, deterministic=True).actions
    torch.testing.assert_close(greedy, sac.act(obs, deterministic=True).actions)  # the mode is deterministic
    assert not torch.equal(sac.act(obs).actions, sac.act(obs).actions)  # exploring samples
    with pytest.raises(ValueError, match="sampling its policy"):
        sac.act(obs, Exploration(action_noise=0.1))

    td3 = DeterministicActor(OBS, BOX, ContinuousActorConfig(hidden=[16]))
    clean = td3.act(obs).actions
    torch.testing.assert_close(clean, td3(obs))  # no noise unless asked
    noisy = td3.act(obs, Exploration(action_noise=0.5)).actions
    assert ((noisy >= low) & (noisy <= high)).all() and not torch.equal(noisy, clean)
    # the noise is measured in half-ranges: dim 0 has half-range 2, dim 1 has 0.5 (away from the bounds)
    inside = (clean[:, 0].abs() < 0.5) & ((clean[:, 1] - 0.5).abs() < 0.1)
    spread = (noisy - clean)[inside].std(0) / torch.tensor([2.0, 0.5])
    assert spread.min() > 0.2, spread


def test_actors_refuse_unbounded_or_discrete_actions() -> None:
    with pytest.raises(ConfigError, match="finite"):
        SquashedGaussianActor(OBS, gym.spaces.Box(-np.inf, np.inf, (1,)), ContinuousActorConfig())
    with pytest.raises(ConfigError, match="1-D Box action"):
        DeterministicActor(OBS, gym.spaces.Discrete(3), ContinuousActorConfig())


def test_twin_critics_are_two_independent_linear_stacks() -> None:
    torch.manual_seed(0)
    layer = EnsembleLinear(2, 5, 3)
    x = torch.randn(2, 7, 5)
    expected = torch.stack([x[m] @ layer.weight[m] + layer.bias[m] for m in range(2)])
    torch.testing.assert_close(layer(x), expected)
    critic = TwinQ(OBS, BOX, [32, 32])
    q = critic(torch.randn(4, 3), torch.randn(4, 2))
    assert q.shape == (2, 4) and not torch.allclose(q[0], q[1])
    obs, actions = torch.randn(4, 3), torch.randn(4, 2)
    torch.testing.assert_close(critic(obs, actions, members=1)[0], critic(obs, actions)[0])  # Q1 alone, same value
    q[0].sum().backward()  # Q1's loss reaches only Q1's weights
    assert critic.net[0].weight.grad[1].abs().sum() == 0 and critic.net[0].weight.grad[0].abs().sum() > 0
