import gymnasium as gym
import numpy as np
import pytest
import torch

from raylight.core.errors import ConfigError
from raylight.rl.acting import Exploration
from raylight.rl.networks import MLP, NatureCNN, QNetwork, build_torso


def test_torso_is_chosen_from_the_observation_space() -> None:
    assert isinstance(build_torso(gym.spaces.Box(-1, 1, (4,)), [8]), MLP)
    assert isinstance(build_torso(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), [8]), NatureCNN)
    assert isinstance(build_torso(gym.spaces.Box(0, 255, (40, 40, 3), np.uint8), [8]), NatureCNN)
    grey = build_torso(gym.spaces.Box(0, 255, (84, 84), np.uint8), [8])
    assert grey(torch.zeros(2, 84, 84, dtype=torch.uint8)).shape == (2, 512)
    onehot = build_torso(gym.spaces.Discrete(5), [8])
    assert onehot(torch.tensor([0, 4])).shape == (2, 8)
    with pytest.raises(ConfigError, match="observation space"):
        build_torso(gym.spaces.Dict({"a": gym.spaces.Discrete(2)}), [8])


def test_cnn_scales_uint8_pixels() -> None:
    cnn = NatureCNN((40, 40, 3), channels_last=True, scale=1 / 255)
    x = torch.full((1, 40, 40, 3), 255, dtype=torch.uint8)
    assert torch.allclose(cnn(x), cnn(torch.ones(1, 40, 40, 3) * 255))


def test_dueling_q_has_mean_zero_advantage_decomposition() -> None:
    torch.manual_seed(0)
    q = QNetwork(gym.spaces.Box(-1, 1, (3,)), 4, [16], dueling=True)
    obs = torch.randn(5, 3)
    h = q.torso(obs)
    values = q.value(h)
    out = q(obs)
    assert out.shape == (5, 4)
    torch.testing.assert_close(out.mean(dim=1, keepdim=True), values)


def test_epsilon_greedy_act() -> None:
    torch.manual_seed(0)
    q = QNetwork(gym.spaces.Box(-1, 1, (3,)), 4, [16], dueling=False)
    obs = torch.randn(1000, 3)
    greedy = q.act(obs, deterministic=True).actions
    assert torch.equal(greedy, q(obs).argmax(1))
    assert torch.equal(q.act(obs).actions, greedy)  # no epsilon: greedy
    out = q.act(obs, Exploration(epsilon=1.0))
    assert out.logprobs is None and out.values is None  # a Q-network has no policy outputs to store
    explored = out.actions
    assert 0.6 < (explored != greedy).float().mean() < 0.9  # 3/4 of random picks differ


def test_q_network_init_is_orthogonal_or_pytorch_default() -> None:
    """ortho_init false gives SB3's DQN init (PyTorch default: Kaiming-uniform weights, nonzero biases)."""
    torch.manual_seed(0)
    ortho = QNetwork(gym.spaces.Box(-1, 1, (3,)), 4, [16], dueling=False)
    default = QNetwork(gym.spaces.Box(-1, 1, (3,)), 4, [16], dueling=False, ortho_init=False)
    w = ortho.advantage.weight  # (4, 16), gain 1: orthonormal rows
    torch.testing.assert_close(w @ w.T, torch.eye(4))
    assert all(not torch.any(m.bias) for m in ortho.modules() if isinstance(m, torch.nn.Linear))
    assert all(torch.any(m.bias) for m in default.modules() if isinstance(m, torch.nn.Linear))
    bound = 1 / np.sqrt(16)  # PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert default.advantage.weight.abs().max() <= bound


def test_minatar_frames_get_the_small_cnn() -> None:
    """MinAtar's 10x10xC bool planes (channels last) go through Young & Tian's 3x3x16 conv + 128 units."""
    pytest.importorskip("minatar")
    from raylight.rl.config import EnvConfig
    from raylight.rl.envs import make_vector_env
    from raylight.rl.networks import MinAtarCNN

    env = make_vector_env(EnvConfig(id="MinAtar/Breakout-v1"), num_envs=2, seed=0)
    obs, _ = env.reset(seed=0)
    torso = build_torso(env.single_observation_space, hidden=[64])
    assert isinstance(torso, MinAtarCNN) and torso.channels_last and torso.out_dim == 128
    assert tuple(torso.conv[0].weight.shape) == (16, 4, 3, 3)
    assert torso(torch.as_tensor(obs)).shape == (2, 128)
    env.close()
