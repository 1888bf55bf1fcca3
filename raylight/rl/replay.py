"""Replay buffer: preallocated (rows, streams) arrays, uniform or prioritized sampling, n-step targets.

Each env copy is one *stream* (a column); rows are time. Keeping streams apart lets n-step returns
be built at sample time by looking ahead in the same column, across rollout-batch boundaries,
stopping at episode ends (SB3 2.4+ does the same). Prioritized replay follows Schaul et al. 2016
(proportional variant, sum tree over all cells, importance weights normalised by their max).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from raylight.rl.rollout import RolloutBatch


class ReplaySamples(NamedTuple):
    """A block of G minibatches of B transitions each, as the buffer samples it: numpy arrays (G, B, ...)."""

    obs: np.ndarray
    actions: np.ndarray
    returns: np.ndarray  # n-step discounted reward sum, float32
    next_obs: np.ndarray  # observation n steps later (or at the episode's end)
    discounts: np.ndarray  # gamma^k for the k steps taken, 0 where the episode terminated
    weights: np.ndarray  # importance-sampling weights (1 for uniform replay)
    indices: np.ndarray  # flat cell indices, for priority updates


class ReplayBatch(NamedTuple):
    """The types ``training_step`` receives: the DataLoader (``batch_size=None``) turns each array of a
    ``ReplaySamples`` into a tensor (same fields, same order; a Python 3.10 NamedTuple cannot be generic)."""

    obs: torch.Tensor
    actions: torch.Tensor
    returns: torch.Tensor
    next_obs: torch.Tensor
    discounts: torch.Tensor
    weights: torch.Tensor
    indices: torch.Tensor


class SumTree:
    """Binary sum tree over ``size`` leaves: O(log n) priority updates and prefix-sum sampling."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.depth = int(np.ceil(np.log2(max(size, 2))))
        self.leaf0 = 2**self.depth
        self.tree = np.zeros(2 * self.leaf0, np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def update(self, leaves: np.ndarray, values: np.ndarray) -> None:
        idx = leaves + self.leaf0
        self.tree[idx] = values
        idx = np.unique(idx // 2)
        while idx[0] >= 1:
            self.tree[idx] = self.tree[2 * idx] + self.tree[2 * idx + 1]
            if idx[0] == 1:
                break
            idx = np.unique(idx // 2)

    def find(self, prefix: np.ndarray) -> np.ndarray:
        """Leaf index whose cumulative range contains each prefix sum."""
        idx = np.ones(len(prefix), np.int64)
        prefix = prefix.copy()
        for _ in range(self.depth):
            left = 2 * idx
            go_right = prefix > self.tree[left]
            prefix = np.where(go_right, prefix - self.tree[left], prefix)
            idx = np.where(go_right, left + 1, left)
        return np.minimum(idx - self.leaf0, self.size - 1)


class ReplayBuffer:
    """Transitions in (rows, streams) arrays. With ``optimize_memory`` each observation is stored once
    (SB3's ``optimize_memory_usage``, which halves an Atari buffer): the next observation of (row, col) is
    ``obs[row + 1, col]``, the newest row's is kept per stream, and at an episode end -- where the
    following slot holds the next episode's first observation -- the true final observation is kept in a
    small side table (episode ends are rare), so truncated episodes still bootstrap from the right state.
    """

    def __init__(
        self,
        capacity: int,
        num_streams: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype,
        gamma: float,
        n_step: int = 1,
        prioritized: bool = False,
        alpha: float = 0.6,
        seed: int = 0,
        optimize_memory: bool = False,
    ) -> None:
        self.rows = max(capacity // num_streams, n_step + 1)
        self.streams = num_streams
        self.gamma = gamma
        self.n_step = n_step
        self.rng = np.random.default_rng(seed)
        shape = (self.rows, num_streams)
        self.optimize_memory = optimize_memory
        self.obs = np.zeros((*shape, *obs_shape), obs_dtype)
        self.next_obs = None if optimize_memory else np.zeros((*shape, *obs_shape), obs_dtype)
        self.tail_next = np.zeros((num_streams, *obs_shape), obs_dtype)  # next obs of the newest row (optimize_memory)
        self.final_next: dict[int, np.ndarray] = {}  # cell -> next obs where an episode ended (optimize_memory)
        self.actions = np.zeros((*shape, *action_shape), action_dtype)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.done = np.zeros(shape, bool)  # terminated or truncated: n-step returns stop here
        self.pos = 0  # next row to write
        self.full = False
        self.alpha = alpha
        self.tree = SumTree(self.rows * num_streams) if prioritized else None
        self.max_priority = 1.0

    def __len__(self) -> int:
        return (self.rows if self.full else self.pos) * self.streams

    def extend(self, batches: list[RolloutBatch]) -> None:
        """Append rollouts; batch k fills streams k*N..(k+1)*N (all batches have the same T)."""
        for start in range(0, batches[0].rewards.shape[0], self.rows):
            self._write([_slice_time(b, start, start + self.rows) for b in batches])

    def _write(self, batches: list[RolloutBatch]) -> None:
        T = batches[0].rewards.shape[0]
        rows = (self.pos + np.arange(T)) % self.rows
        col = 0
        for b in batches:
            cols = slice(col, col + b.rewards.shape[1])
            self.obs[rows, cols] = b.obs
            if self.next_obs is not None:
                self.next_obs[rows, cols] = b.next_obs
            else:
                self._keep_next(rows, col, b)
            self.actions[rows, cols] = b.actions
            self.rewards[rows, cols] = b.rewards
            self.terminated[rows, cols] = b.terminated
            self.done[rows, cols] = b.terminated | b.truncated
            col += b.rewards.shape[1]
        assert col == self.streams, f"rollouts cover {col} streams, buffer has {self.streams}"
        if self.tree is not None:
            cells = (rows[:, None] * self.streams + np.arange(self.streams)[None, :]).reshape(-1)
            self.tree.update(cells, np.full(len(cells), self.max_priority**self.alpha))
        self.full = self.full or self.pos + T >= self.rows
        self.pos = (self.pos + T) % self.rows

    def _keep_next(self, rows: np.ndarray, col0: int, b: RolloutBatch) -> None:
        """optimize_memory: drop the side-table entries of overwritten cells, keep this batch's episode-end
        next observations and its last row's (the following row is not written yet)."""
        n = b.rewards.shape[1]
        for r in rows:
            for c in range(col0, col0 + n):
                self.final_next.pop(int(r) * self.streams + c, None)
        ends = np.argwhere(b.terminated | b.truncated)
        for t, j in ends:
            self.final_next[int(rows[t]) * self.streams + col0 + int(j)] = b.next_obs[t, j].copy()
        self.tail_next[col0 : col0 + n] = b.next_obs[-1]

    def next_observations(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """The observation after (row, col): stored, or (optimize_memory) the next slot / tail / side table."""
        if self.next_obs is not None:
            return self.next_obs[row, col]
        out = self.obs[(row + 1) % self.rows, col]
        newest = (self.pos - 1) % self.rows
        at_tail = row == newest
        out[at_tail] = self.tail_next[col[at_tail]]
        for i in np.flatnonzero(self.done[row, col]):
            out[i] = self.final_next[int(row[i]) * self.streams + int(col[i])]
        return out

    def nbytes(self) -> int:
        """Bytes held by the stored transitions (the README's memory figures)."""
        arrays = [self.obs, self.actions, self.rewards, self.terminated, self.done, self.tail_next]
        if self.next_obs is not None:
            arrays.append(self.next_obs)
        return sum(a.nbytes for a in arrays) + sum(v.nbytes for v in self.final_next.values())

    def sample(self, num_batches: int, batch_size: int, beta: float = 0.4) -> ReplaySamples:
        """``num_batches`` minibatches drawn at once (one Lightning step = one block of updates)."""
        n = num_batches * batch_size
        filled = self.rows if self.full else self.pos
        if self.tree is None:
            cells = self.rng.integers(0, filled * self.streams, n)
            weights = np.ones(n, np.float32)
        else:
            total = self.tree.total
            segment = total / n  # stratified: one draw per equal slice of the priority mass
            cells = self.tree.find((np.arange(n) + self.rng.random(n)) * segment)
            probs = self.tree.tree[cells + self.tree.leaf0] / total
            weights = (len(self) * probs) ** (-beta)
            weights = (weights / weights.max()).astype(np.float32)
        row, col = np.divmod(cells, self.streams)
        returns, last_row, discounts = self._n_step(row, col)
        out = ReplaySamples(
            obs=self.obs[row, col],
            actions=self.actions[row, col],
            returns=returns,
            next_obs=self.next_observations(last_row, col),
            discounts=discounts,
            weights=weights,
            indices=cells,
        )
        return ReplaySamples(*(a.reshape(num_batches, batch_size, *a.shape[1:]) for a in out))

    def _n_step(self, row: np.ndarray, col: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Discounted sum of up to n rewards, the row of the last step used, and gamma^k (0 if terminated)."""
        newest = (self.pos - 1) % self.rows
        available = (newest - row) % self.rows  # steps written after `row` in this stream
        returns = np.zeros(len(row), np.float32)
        discount = np.ones(len(row), np.float32)
        last_row = row.copy()
        terminated = np.zeros(len(row), bool)
        alive = np.ones(len(row), bool)
        for k in range(self.n_step):
            use = alive & (k <= available)
            r_k = (row + k) % self.rows
            returns += np.where(use, discount * self.rewards[r_k, col], 0.0).astype(np.float32)
            discount = np.where(use, discount * self.gamma, discount)
            last_row = np.where(use, r_k, last_row)
            terminated = np.where(use, self.terminated[r_k, col], terminated)
            alive = use & ~self.done[r_k, col]
        return returns, last_row, np.where(terminated, 0.0, discount).astype(np.float32)

    def update_priorities(self, cells: np.ndarray, td_errors: np.ndarray, eps: float = 1e-6) -> None:
        if self.tree is None:
            return
        priorities = np.abs(td_errors) + eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(cells, priorities**self.alpha)

    _FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated", "done")

    def state_dict(self) -> dict[str, np.ndarray | int | bool | float]:
        """The filled rows only (a fresh 1M-transition buffer is not written as 1M zeros); the same layout
        with or without ``optimize_memory``, so either kind of buffer resumes from either kind of checkpoint."""
        filled = self.rows if self.full else self.pos
        state: dict[str, np.ndarray | int | bool | float] = {k: getattr(self, k)[:filled] for k in self._FIELDS if k != "next_obs"}
        if self.next_obs is not None:
            state["next_obs"] = self.next_obs[:filled]
        else:
            rows = np.repeat(np.arange(filled), self.streams)
            cols = np.tile(np.arange(self.streams), filled)
            state["next_obs"] = self.next_observations(rows, cols).reshape(filled, self.streams, *self.obs.shape[2:]) if filled else self.obs[:0]
        state.update(pos=self.pos, full=self.full, max_priority=self.max_priority, rows=self.rows)
        if self.tree is not None:
            state["tree"] = self.tree.tree
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a saved buffer; one saved with another layout (rows x streams: another buffer size or
        env count per learner) is re-streamed into this one instead of dropped."""
        arrays = {k: np.asarray(state[k]) for k in self._FIELDS}
        saved_rows = int(state["rows"]) if "rows" in state else arrays["rewards"].shape[0]
        same_layout = saved_rows == self.rows and arrays["rewards"].shape[1] == self.streams
        if arrays["obs"].shape[2:] != self.obs.shape[2:]:
            raise ValueError(f"replay: saved observations have shape {arrays['obs'].shape[2:]}, this env's {self.obs.shape[2:]}")
        if not same_layout:
            self._restream(arrays, int(state["pos"]), bool(state["full"]))
            return
        filled = arrays["rewards"].shape[0]
        self.pos, self.full, self.max_priority = int(state["pos"]), bool(state["full"]), float(state["max_priority"])
        self._assign(arrays, filled)
        if self.tree is not None and "tree" in state:
            np.copyto(self.tree.tree, np.asarray(state["tree"]))

    def _restream(self, arrays: dict[str, np.ndarray], pos: int, full: bool) -> None:
        """Lay the saved transitions out over this buffer's streams, oldest first.

        Each saved stream is taken in time order (its newest rows when this buffer is smaller) and the
        streams are concatenated; the sequence is cut into equal chunks, one per new stream. A cut is
        marked ``done`` (not ``terminated``): n-step returns stop there and bootstrap from the stored
        next observation, which is exactly right, and never run on into another stream's data.
        """
        saved_rows, saved_streams = arrays["rewards"].shape
        order = (np.arange(saved_rows) + pos) % saved_rows if full else np.arange(saved_rows)
        keep = min(saved_rows, (self.rows * self.streams) // max(saved_streams, 1))
        order = order[saved_rows - keep :]
        columns = {k: v[order] for k, v in arrays.items()}  # (keep, saved_streams, ...), time-ordered
        columns["done"] = columns["done"].copy()
        columns["done"][-1] = True  # a saved stream's end is a cut
        flat = {k: np.swapaxes(v, 0, 1).reshape(-1, *v.shape[2:]) for k, v in columns.items()}  # stream-major
        length = min(self.rows, len(flat["rewards"]) // self.streams)
        chunks = {k: np.swapaxes(v[: length * self.streams].reshape(self.streams, length, *v.shape[1:]), 0, 1) for k, v in flat.items()}
        if length:
            chunks["done"][length - 1] = True  # chunk ends are cuts too
        self.pos, self.full = length % self.rows, length == self.rows
        self._assign(chunks, length)
        if self.tree is not None and length:
            cells = np.arange(length * self.streams)
            self.tree.update(cells, np.full(len(cells), self.max_priority**self.alpha))


    def _assign(self, arrays: dict[str, np.ndarray], length: int) -> None:
        """Rows [0, length) from full (obs + next_obs) arrays; optimize_memory keeps next_obs only where needed."""
        for k in self._FIELDS:
            if k != "next_obs":
                getattr(self, k)[:length] = arrays[k]
        if self.next_obs is not None:
            self.next_obs[:length] = arrays["next_obs"]
            return
        self.final_next = {}
        for r, c in np.argwhere(arrays["done"][:length]):
            self.final_next[int(r) * self.streams + int(c)] = arrays["next_obs"][r, c].copy()
        if length:
            self.tail_next[:] = arrays["next_obs"][(self.pos - 1) % self.rows if self.full else length - 1]


def _slice_time(b: RolloutBatch, start: int, stop: int) -> RolloutBatch:
    if start == 0 and stop >= b.rewards.shape[0]:
        return b
    return RolloutBatch(
        b.obs[start:stop], b.actions[start:stop], b.rewards[start:stop], b.terminated[start:stop],
        b.truncated[start:stop], b.next_obs[start:stop], policy_version=b.policy_version,
    )
