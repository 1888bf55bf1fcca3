import dataclasses

import numpy as np
import pytest

from raylight.rl.replay import ReplayBuffer, SumTree
from raylight.rl.rollout import RolloutBatch


def _batch(rewards, terminated, truncated=None, start=0.0):
    rewards = np.asarray(rewards, np.float32)[:, None]  # (T, 1)
    T = len(rewards)
    obs = (start + np.arange(T, dtype=np.float32))[:, None, None]  # obs value = time index
    terminated = np.asarray(terminated, bool)[:, None]
    truncated = np.zeros_like(terminated) if truncated is None else np.asarray(truncated, bool)[:, None]
    return RolloutBatch(obs, np.zeros((T, 1), np.int64), rewards, terminated, truncated, obs + 100.0)


def _buffer(n_step, capacity=16, prioritized=False):
    return ReplayBuffer(capacity, 1, (1,), np.float32, (), np.int64, gamma=0.5, n_step=n_step, prioritized=prioritized)


def test_n_step_returns_known_answer_with_termination_and_truncation() -> None:
    buf = _buffer(n_step=3)
    # t:        0    1    2    3    4    5
    buf.extend([_batch([1, 2, 4, 8, 16, 32], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0])])
    rows = np.arange(6)
    returns, last_row, discounts = buf._n_step(rows, np.zeros(6, int))
    # t=0: 1 + .5*2 + .25*4, terminated at t=2 -> discount 0
    # t=1: 2 + .5*4, terminated -> 0 ; t=2: 4, terminated -> 0
    # t=3: 8 + .5*16, truncated at t=4 -> bootstrap from next_obs[4] with .25
    # t=4: 16, truncated -> bootstrap .5 ; t=5: 32, only step written -> .5
    np.testing.assert_allclose(returns, [3.0, 4.0, 4.0, 16.0, 16.0, 32.0])
    np.testing.assert_allclose(discounts, [0.0, 0.0, 0.0, 0.25, 0.5, 0.5])
    np.testing.assert_array_equal(last_row, [2, 2, 2, 4, 4, 5])


def test_n_step_spans_rollout_batches_and_wraps_around() -> None:
    buf = _buffer(n_step=2, capacity=4)
    buf.extend([_batch([1, 1, 1], [0, 0, 0])])
    buf.extend([_batch([2, 2, 2], [0, 0, 0], start=3)])  # wraps: rows 3, 0, 1
    assert len(buf) == 4 and buf.full
    samples = buf.sample(1, 64)
    # every sampled transition has obs in {2,3,4,5} (oldest overwritten) and next_obs two steps later unless newest
    assert set(np.unique(samples.obs)) <= {2.0, 3.0, 4.0, 5.0}
    ok = samples.obs[..., 0] < 5
    np.testing.assert_allclose(samples.next_obs[..., 0][ok], samples.obs[..., 0][ok] + 1 + 100)


def test_uniform_sample_shapes_and_weights() -> None:
    buf = _buffer(n_step=1)
    buf.extend([_batch(np.ones(10), np.zeros(10))])
    s = buf.sample(3, 5)
    assert s.obs.shape == (3, 5, 1) and s.returns.shape == (3, 5)
    assert (s.weights == 1).all()
    assert s.obs.max() < 10  # only written rows


def test_sum_tree_samples_in_proportion_to_priority() -> None:
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 0.0, 3.0, 0.0]))
    assert tree.total == pytest.approx(4.0)
    u = np.random.default_rng(0).uniform(0, tree.total, 20_000)
    counts = np.bincount(tree.find(u), minlength=4) / len(u)
    np.testing.assert_allclose(counts, [0.25, 0, 0.75, 0], atol=0.02)


def test_prioritized_replay_prefers_high_td_error_and_weights_correct_bias() -> None:
    buf = _buffer(n_step=1, prioritized=True)
    buf.extend([_batch(np.ones(8), np.zeros(8))])
    buf.update_priorities(np.arange(8), np.array([10.0] + [0.01] * 7))
    s = buf.sample(1, 400, beta=1.0)
    frac = float((s.indices == 0).mean())
    assert frac > 0.8
    assert s.weights[s.indices == 0].max() < s.weights[s.indices != 0].min()
    assert s.weights.max() == pytest.approx(1.0)


def test_state_dict_round_trip() -> None:
    buf = _buffer(n_step=2, prioritized=True)
    buf.extend([_batch(np.arange(5), np.zeros(5))])
    other = _buffer(n_step=2, prioritized=True)
    other.load_state_dict(buf.state_dict())
    assert len(other) == len(buf)
    np.testing.assert_array_equal(other.rewards, buf.rewards)
    np.testing.assert_array_equal(other.tree.tree, buf.tree.tree)


def _streams_batch(T: int, N: int, offset: float) -> RolloutBatch:
    """obs = offset + 1000*stream + t, next_obs = obs + 0.5; no episode ends."""
    obs = (offset + 1000.0 * np.arange(N)[None, :] + np.arange(T)[:, None]).astype(np.float32)[..., None]
    z = np.zeros((T, N), bool)
    return RolloutBatch(obs, np.zeros((T, N), np.int64), obs[..., 0].copy(), z, z.copy(), obs + 0.5)


def test_state_dict_saves_only_the_filled_rows() -> None:
    buf = ReplayBuffer(100_000, 4, (4,), np.float32, (), np.int64, gamma=0.9)
    z = np.zeros((10, 4), bool)
    frames = np.zeros((10, 4, 4), np.float32)
    buf.extend([RolloutBatch(frames, np.zeros((10, 4), np.int64), np.zeros((10, 4), np.float32), z, z, frames)])
    state = buf.state_dict()
    assert state["obs"].shape == (10, 4, 4) and state["rows"] == 25_000


@pytest.mark.parametrize(("old_streams", "new_streams", "capacity"), [(4, 2, 64), (2, 4, 64), (4, 2, 16)])
def test_a_buffer_saved_with_another_stream_count_is_restreamed(old_streams: int, new_streams: int, capacity: int) -> None:
    """Resume with another env count per learner: transitions keep their (obs, reward, next_obs) triples, the
    newest are kept when the new buffer is smaller, and n-step returns never run across a cut."""
    old = ReplayBuffer(64, old_streams, (1,), np.float32, (), np.int64, gamma=0.5, n_step=3)
    old.extend([_streams_batch(64 // old_streams, old_streams, 0.0)])
    new = ReplayBuffer(capacity, new_streams, (1,), np.float32, (), np.int64, gamma=0.5, n_step=3)
    new.load_state_dict(old.state_dict())
    filled = new.rows if new.full else new.pos
    got = {(float(o), float(r), float(n)) for o, r, n in zip(new.obs[:filled].ravel(), new.rewards[:filled].ravel(),
                                                             new.next_obs[:filled].ravel(), strict=True)}
    want = {(float(o), float(r), float(n)) for o, r, n in zip(old.obs.ravel(), old.rewards.ravel(), old.next_obs.ravel(), strict=True)}
    assert got <= want and len(got) == min(64, new.rows * new_streams) == len(new)
    if capacity < 64:  # the newest transitions of every saved stream survive
        newest = {float(o) for o in old.obs[-1].ravel()}
        assert newest <= {float(o) for o in new.obs[:filled].ravel()}
    # n-step: every return uses rewards of one saved stream only (obs values of a stream share their thousands digit)
    batch = new.sample(1, 256)
    stream_of_obs = batch.obs[0, :, 0] // 1000
    stream_of_next = np.floor(batch.next_obs[0, :, 0]) // 1000
    assert (stream_of_obs == stream_of_next).all()
    assert (batch.next_obs[0, :, 0] - batch.obs[0, :, 0] <= 2.5).all()  # at most n=3 steps ahead


def _episodes(T: int, N: int, seed: int) -> RolloutBatch:
    """Rollouts whose next_obs continue obs (as a worker's do), with terminations, truncations and resets."""
    rng = np.random.default_rng(seed)
    obs = np.zeros((T, N, 4, 3), np.uint8)
    next_obs = np.zeros_like(obs)
    term = rng.random((T, N)) < 0.1
    trunc = ~term & (rng.random((T, N)) < 0.1)
    current = rng.integers(0, 255, (N, 4, 3), dtype=np.uint8)
    for t in range(T):
        obs[t] = current
        next_obs[t] = rng.integers(0, 255, (N, 4, 3), dtype=np.uint8)  # the true next (or final) observation
        ended = term[t] | trunc[t]
        current = np.where(ended[:, None, None], rng.integers(0, 255, (N, 4, 3), dtype=np.uint8), next_obs[t])  # reset obs
    return RolloutBatch(obs, np.zeros((T, N), np.int64), rng.random((T, N)).astype(np.float32), term, trunc, next_obs)


def _chained(batches: list[RolloutBatch]) -> list[RolloutBatch]:
    """Make each rollout start where the previous one ended, as a worker's next rollout does."""
    out = [batches[0]]
    for b in batches[1:]:
        prev = out[-1]
        ended = prev.terminated[-1] | prev.truncated[-1]
        first = np.where(ended[:, None, None], b.obs[0], prev.next_obs[-1])
        obs = b.obs.copy()
        obs[0] = first
        out.append(dataclasses.replace(b, obs=obs))
    return out


@pytest.mark.parametrize("n_step, prioritized", [(1, False), (3, False), (3, True)])
def test_memory_optimized_buffer_samples_exactly_what_the_plain_one_does(n_step: int, prioritized: bool) -> None:
    """Observations stored once (next = following slot, newest row's kept, episode ends in a side table):
    the same transitions as storing next_obs, through wrap-around, truncations and a checkpoint round trip."""
    batches = _chained([_episodes(7, 3, s) for s in range(6)])
    plain = ReplayBuffer(30, 3, (4, 3), np.uint8, (), np.int64, 0.9, n_step, prioritized, seed=1)
    small = ReplayBuffer(30, 3, (4, 3), np.uint8, (), np.int64, 0.9, n_step, prioritized, seed=1, optimize_memory=True)
    for b in batches:  # 42 rows into 10: wraps around several times
        plain.extend([b])
        small.extend([b])
        a, c = plain.sample(2, 16), small.sample(2, 16)
        for field in a._fields:
            assert np.array_equal(getattr(a, field), getattr(c, field)), field
    # Checkpoints: the same state either way; a plain buffer resumes from a memory-optimized one and back.
    state = small.state_dict()
    for k, v in plain.state_dict().items():
        assert np.array_equal(np.asarray(v), np.asarray(state[k])), k
    again = ReplayBuffer(30, 3, (4, 3), np.uint8, (), np.int64, 0.9, n_step, prioritized, seed=2, optimize_memory=True)
    again.load_state_dict(plain.state_dict())
    plain.rng, again.rng = np.random.default_rng(5), np.random.default_rng(5)
    a, c = plain.sample(2, 16), again.sample(2, 16)
    assert all(np.array_equal(getattr(a, f), getattr(c, f)) for f in a._fields)
    restreamed = ReplayBuffer(30, 2, (4, 3), np.uint8, (), np.int64, 0.9, n_step, seed=3, optimize_memory=True)
    restreamed.load_state_dict(state)  # another env count: re-streamed, next observations kept right
    reference = ReplayBuffer(30, 2, (4, 3), np.uint8, (), np.int64, 0.9, n_step, seed=3)
    reference.load_state_dict(state)
    rows, cols = np.divmod(np.arange(len(reference)), 2)
    assert np.array_equal(reference.next_observations(rows, cols), restreamed.next_observations(rows, cols))


def test_memory_optimized_atari_sized_buffer_is_half_the_size() -> None:
    plain = ReplayBuffer(10_000, 8, (4, 84, 84), np.uint8, (), np.int64, 0.99)
    small = ReplayBuffer(10_000, 8, (4, 84, 84), np.uint8, (), np.int64, 0.99, optimize_memory=True)
    assert small.nbytes() / plain.nbytes() < 0.51  # 565 MB -> 282 MB here; a 1M-transition buffer 56 -> 28 GB
