"""Categorical and diagonal-Gaussian heads against torch.distributions, over a grid of shapes."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Normal

from raylight.core.errors import ConfigError
from raylight.rl.distributions import (
    Categorical,
    CategoricalHead,
    DiagGaussian,
    GaussianHead,
    build_policy_head,
)


@pytest.mark.parametrize("batch,n", [(1, 2), (7, 3), (64, 18)])
def test_categorical_log_prob_and_entropy_match_torch(batch: int, n: int) -> None:
    g = torch.Generator().manual_seed(batch * n)
    logits = 3.0 * torch.randn(batch, n, generator=g)
    actions = torch.randint(0, n, (batch,), generator=g)
    ours, ref = Categorical(logits), TorchCategorical(logits=logits)
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    assert torch.equal(ours.mode(), logits.argmax(dim=1))


def test_categorical_masked_logit_has_finite_entropy_and_is_never_sampled() -> None:
    logits = torch.tensor([[0.0, float("-inf"), 1.0]]).repeat(2000, 1)
    dist = Categorical(logits)
    assert torch.isfinite(dist.entropy()).all()
    torch.testing.assert_close(dist.entropy(), TorchCategorical(logits=logits).entropy())
    assert (dist.sample() != 1).all()


def test_categorical_sample_frequencies_follow_probabilities() -> None:
    torch.manual_seed(0)
    probs = torch.tensor([0.1, 0.6, 0.3])
    samples = Categorical(probs.log().repeat(20_000, 1)).sample()
    freq = torch.bincount(samples, minlength=3).float() / len(samples)
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


@pytest.mark.parametrize("batch,dim,state_dependent", [(1, 1, False), (16, 3, False), (8, 6, True)])
def test_gaussian_log_prob_and_entropy_match_torch(batch: int, dim: int, state_dependent: bool) -> None:
    g = torch.Generator().manual_seed(batch + dim)
    mean = torch.randn(batch, dim, generator=g)
    log_std = 0.5 * torch.randn((batch, dim) if state_dependent else (dim,), generator=g)
    actions = 3.0 * torch.randn(batch, dim, generator=g)  # far outside any Box: densities stay exact
    ours = DiagGaussian(mean, log_std)
    ref = Normal(mean, log_std.exp().expand_as(mean))
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions).sum(-1))
    torch.testing.assert_close(ours.entropy(), ref.entropy().sum(-1))
    assert torch.equal(ours.mode(), mean)


def test_gaussian_samples_have_the_right_moments() -> None:
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0]).repeat(50_000, 1)
    log_std = torch.tensor([0.0, np.log(0.5)], dtype=torch.float32)
    samples = DiagGaussian(mean, log_std).sample()
    torch.testing.assert_close(samples.mean(0), torch.tensor([1.0, -2.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(samples.std(0), torch.tensor([1.0, 0.5]), atol=0.02, rtol=0)


def test_heads_by_action_space() -> None:
    feats = torch.randn(5, 8)
    cat = build_policy_head(gym.spaces.Discrete(4), 8, 0.0)
    assert isinstance(cat, CategoricalHead) and cat(feats).sample().shape == (5,)
    gauss = build_policy_head(gym.spaces.Box(-1, 1, (2,)), 8, -0.5)
    assert isinstance(gauss, GaussianHead) and gauss(feats).sample().shape == (5, 2)
    # State-independent log-std: one learned parameter per action dim, initialized as configured.
    torch.testing.assert_close(gauss.log_std.detach(), torch.full((2,), -0.5))
    with pytest.raises(ConfigError, match="action space"):
        build_policy_head(gym.spaces.MultiBinary(3), 8, 0.0)
