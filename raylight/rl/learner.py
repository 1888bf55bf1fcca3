"""What every RL learner shares: env-step bookkeeping, the policy snapshot shipped to workers,
episode statistics, checkpointed counters. A learner is the LightningModule that owns the loss and the
optimizer (RLlib's "Learner"); the networks it trains are plain ``nn.Module``s. Family bases
(``on_policy.OnPolicyLearner``, ``off_policy.OffPolicyLearner``) hold what every algorithm of a family
repeats, so an algorithm file holds only its math.

Protocol with the experience DataModule (``raylight.rl.experience``):
  ``experience``        -> how it consumes the workers: synchronous, pipelined or asynchronous;
  ``rollout_request()`` -> how many steps per env to sample next, with which exploration params;
  ``policy_snapshot()`` -> the ``PolicySnapshot`` (CPU weights, statistics, version) shipped to the workers;
  ``make_training_item(batches)`` -> one whole update's worth of data (or None while warming up).
One Lightning step = one whole update (a DQN gradient-step block, a PPO epochs x minibatches pass):
Lightning's per-step overhead is large next to RL-sized networks (shared/PITFALLS.md).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import pytorch_lightning as pl
import torch
from pydantic import BaseModel
from torch import nn

from raylight.core.errors import ConfigError
from raylight.core.numerics import NumericsGuard
from raylight.rl.acting import Exploration, PolicySnapshot
from raylight.rl.config import RLExperimentConfig
from raylight.rl.networks import PretrainedTorso
from raylight.rl.normalization import Moments, NormalizedActor, obs_stats, reward_stats
from raylight.rl.rollout import ActorSpec, RolloutBatch

Schedule = Literal["constant", "linear"]  # a hyperparameter held, or annealed linearly to 0 over the run
# How a learner consumes its rollout workers (``raylight.rl.experience``):
#   synchronous  -- every worker samples with the current weights, the learner trains, repeat (older batches dropped);
#   pipelined    -- the workers sample the next batch while the learner trains on this one (replay-based learners);
#   asynchronous -- each worker keeps one request in flight; the learner trains on whichever batch arrives first
#                   and corrects for its lag (V-trace), dropping batches more than ``max_policy_lag`` versions old.
ExperienceMode = Literal["synchronous", "pipelined", "asynchronous"]


@dataclass(frozen=True)
class RolloutRequest:
    steps_per_env: int
    explore: Exploration = field(default_factory=Exploration)


class Learner(pl.LightningModule):
    """Base of the RL algorithms. Subclasses set ``experience``, declare their acting network and implement the hooks below."""

    experience: ClassVar[ExperienceMode] = "pipelined"
    max_policy_lag: int | None = None  # asynchronous learners: drop batches more than this many versions old

    def __init__(self, cfg: RLExperimentConfig, obs_space: gym.Space, act_space: gym.Space) -> None:
        super().__init__()
        # Plain dict only: checkpoints must load with torch.load(weights_only=True).
        self.save_hyperparameters({"config": cfg.to_dict()})
        self.cfg = cfg
        self.obs_space = obs_space
        self.act_space = act_space
        self.automatic_optimization = False
        self.env_steps = 0
        self.episodes = 0
        self.policy_version = 0
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.recent_lengths: deque[int] = deque(maxlen=100)
        self.numerics = NumericsGuard(cfg.trainer.numerics)
        if cfg.env.normalize_obs and not (isinstance(obs_space, gym.spaces.Box) and np.issubdtype(obs_space.dtype, np.floating)):
            raise ConfigError(f"env.normalize_obs: needs float vector observations; {cfg.env.id} has {obs_space} (images are scaled by the network)")
        # The run's one set of observation statistics (raylight.rl.normalization); None: not normalizing.
        self.obs_moments: Moments | None = Moments.empty(obs_space.shape) if cfg.env.normalize_obs else None
        self.return_moments: Moments | None = Moments.empty(()) if cfg.env.normalize_reward else None
        self.sample_seconds = 0.0  # this rank's workers' time spent sampling (their busy time)
        self.update_seconds = 0.0  # this learner's time spent in training steps (its busy time)
        self._update_t0 = 0.0
        self._rate_t0 = time.perf_counter()
        self._rate_steps0 = 0
        self._next_log_at = 0  # env steps at which log_iteration next logs

    # --- what the algorithm declares and implements ---------------------------------------------
    # The acting network: ``build_actor(agent_cfg, obs_space, act_space)`` returns a fresh one with
    # ``act(obs, explore=Exploration(), deterministic=False) -> ActorOutput`` (``raylight.rl.acting``). It must be
    # a module-level function of a module that does not import Lightning (rollout actors get it through
    # ``ActorSpec``), taking ``actor_config`` -- the base class of the agent config holding its network fields.
    actor_config: ClassVar[type[BaseModel]]
    build_actor: ClassVar[Callable[[Any, gym.Space, gym.Space], nn.Module]]

    def acting_network(self) -> nn.Module:
        """The learner's network whose state dict the workers' ``build_actor`` copies load."""
        raise NotImplementedError

    def rollout_request(self) -> RolloutRequest:
        raise NotImplementedError

    def make_training_item(self, batches: list[RolloutBatch]) -> Any | None:
        raise NotImplementedError

    # --- shared machinery ---------------------------------------------------------------------
    @property
    def actor_spec(self) -> ActorSpec:
        fields = set(self.actor_config.model_fields)
        return ActorSpec(type(self).build_actor, self.actor_config, self.cfg.agent.model_dump(mode="json", include=fields))

    def policy_snapshot(self) -> PolicySnapshot:
        """CPU weights of the acting network, the frozen normalization statistics and their version."""
        return PolicySnapshot(
            weights={k: v.detach().to("cpu", copy=True) for k, v in self.acting_network().state_dict().items()},
            version=self.policy_version,
            obs_stats=None if self.obs_moments is None else obs_stats(self.obs_moments, self.cfg.env.obs_clip),
            reward_stats=None if self.return_moments is None else reward_stats(self.return_moments, self.cfg.env.reward_clip),
        )

    def cpu_actor(self) -> nn.Module:
        """A CPU copy of the current policy, behind the frozen observation normalization if any
        (evaluation never disturbs the learner's device or statistics)."""
        snapshot = self.policy_snapshot()
        actor = self.build_actor(self.cfg.agent, self.obs_space, self.act_space)
        actor.load_state_dict(snapshot.weights)
        return (actor if snapshot.obs_stats is None else NormalizedActor(actor, snapshot.obs_stats)).eval()

    def update_norm_stats(self, batches: list[RolloutBatch]) -> None:
        """Merge the workers' raw-observation and discounted-return moments into the run's statistics."""
        if self.obs_moments is not None:
            self.obs_moments = self.obs_moments.merge(self._gathered([b.obs_moments for b in batches], tuple(self.obs_space.shape)))
        if self.return_moments is not None:
            self.return_moments = self.return_moments.merge(self._gathered([b.return_moments for b in batches], ()))

    def _gathered(self, parts: Sequence[Moments | None], shape: tuple[int, ...]) -> Moments:
        """This rank's moments merged, then summed over learner ranks (every rank keeps identical statistics)."""
        new = Moments.empty(shape)
        for part in parts:
            if part is not None:
                new = new.merge(part)
        if self._trainer is not None and self.trainer.world_size > 1:
            sums = torch.as_tensor(new.as_sums(), dtype=torch.float64, device=self.device)
            new = Moments.from_sums(self.trainer.strategy.reduce(sums, reduce_op="sum").cpu().numpy(), shape)
        return new

    def observe_rollouts(self, batches: list[RolloutBatch], skipped_steps: int = 0, stale: int = 0) -> int:
        """Count env steps and episodes: global over learner ranks (one all-reduce per iteration), so
        every rank agrees on schedules, evaluation points and the end of the run. ``skipped_steps``:
        steps of batches dropped as non-finite (``trainer.numerics: skip``) still count against the budget.
        ``stale``: this rank's batches too old to train on; returns that count over all ranks, so every rank
        skips the same updates (DDP needs the same number of steps on every rank)."""
        steps = sum(b.num_steps for b in batches) + skipped_steps
        episodes = sum(len(b.episode_returns) for b in batches)
        if self._trainer is not None and self.trainer.world_size > 1:
            counts = torch.tensor([steps, episodes, stale], dtype=torch.int64, device=self.device)
            steps, episodes, stale = (int(x) for x in self.trainer.strategy.reduce(counts, reduce_op="sum").tolist())
        self.env_steps += steps
        self.episodes += episodes
        for b in batches:  # this rank's episodes: a sample of the whole, enough for progress and logs
            self.sample_seconds += b.sample_seconds
            self.recent_returns.extend(b.episode_returns.tolist())
            self.recent_lengths.extend(b.episode_lengths.tolist())
        return stale

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._update_t0 = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.update_seconds += time.perf_counter() - self._update_t0

    def rollout_metrics(self) -> dict[str, float]:
        """Once-per-iteration metrics: env steps, episodes, recent return, env steps per second."""
        now = time.perf_counter()
        rate = (self.env_steps - self._rate_steps0) / max(now - self._rate_t0, 1e-9)
        self._rate_t0, self._rate_steps0 = now, self.env_steps
        out = {"env_steps": float(self.env_steps), "episodes": float(self.episodes), "steps_per_s": rate}
        if self.recent_returns:
            out["rollout/return_mean"] = float(np.mean(self.recent_returns))
            out["rollout/length_mean"] = float(np.mean(self.recent_lengths))
        return out

    def progress_remaining(self) -> float:
        """1 at the start of the run, 0 at trainer.total_env_steps (SB3's schedule argument)."""
        return max(0.0, 1.0 - self.env_steps / self.cfg.trainer.total_env_steps)

    def scheduled(self, value: float, schedule: Schedule) -> float:
        return value * (self.progress_remaining() if schedule == "linear" else 1.0)

    def set_lr(self, opt: Any, lr: float, schedule: Schedule) -> None:
        """Apply ``lr`` under its schedule to every parameter group (times the group's ``lr_scale``: a fine-tuned
        pretrained encoder's ``encoder_lr / lr``), before this iteration's updates."""
        for group in opt.param_groups:
            group["lr"] = self.scheduled(lr, schedule) * group.get("lr_scale", 1.0)

    def parameter_groups(self, module: nn.Module, lr: float) -> list[dict[str, Any]]:
        """``module``'s trainable parameters for its optimizer: a pretrained encoder's (``agent.encoder``, finetune)
        in a group of their own at ``agent.encoder_lr``; a frozen encoder's are not trained at all."""
        encoder_ids = {id(p) for m in module.modules() if isinstance(m, PretrainedTorso) for p in m.encoder.parameters()}
        rest = [p for p in module.parameters() if id(p) not in encoder_ids and p.requires_grad]
        encoder = [p for p in module.parameters() if id(p) in encoder_ids and p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": rest, "lr": lr, "lr_scale": 1.0}]
        if encoder:
            scale = (getattr(self.cfg.agent, "encoder_lr", None) or lr) / lr
            groups.append({"params": encoder, "lr": lr * scale, "lr_scale": scale})
        return groups

    def optimizer_step(self, opt: Any, loss: torch.Tensor, params: Any, max_grad_norm: float | None) -> None:
        """zero_grad -> backward (through Lightning, for precision plugins) -> numerics check -> optional norm clip -> step."""
        params = list(params)
        where = f"in {self.cfg.algo} at env step {self.env_steps:,}"
        self.numerics.check_loss(loss, where)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        grads = [p.grad for p in params if p.grad is not None]
        total_norm = nn.utils.get_total_norm(grads) if grads else None  # one pass serves the check and the clipping
        if not self.numerics.gradients_ok(params, where, total_norm):
            return
        if max_grad_norm is not None and total_norm is not None:
            nn.utils.clip_grads_with_norm_(params, max_grad_norm, total_norm)
        opt.step()

    def log_iteration(self, metrics: dict[str, float]) -> None:
        """Log at most once per ``trainer.log_every_env_steps`` (and never per minibatch): Lightning's ``log`` costs
        milliseconds per call, which was a third of DQN's time when it logged every 4 env steps (``train_freq: 4``)."""
        if self.env_steps < self._next_log_at:
            return
        self._next_log_at = (self.env_steps // self.cfg.trainer.log_every_env_steps + 1) * self.cfg.trainer.log_every_env_steps
        metrics = {**self.rollout_metrics(), **metrics}
        if self.numerics.skipping:
            metrics.update(self.numerics.metrics())
        bar = {"env_steps", "episodes", "rollout/return_mean", "steps_per_s"}
        self.log_dict({k: v for k, v in metrics.items() if k in bar}, prog_bar=True, on_step=True, batch_size=1)
        self.log_dict({k: v for k, v in metrics.items() if k not in bar}, on_step=True, batch_size=1)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["raylight"] = {
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "policy_version": self.policy_version,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
        }
        for key in ("obs_moments", "return_moments"):
            m = getattr(self, key)
            if m is not None:
                checkpoint["raylight"][key] = {"count": m.count, "mean": torch.as_tensor(m.mean), "m2": torch.as_tensor(m.m2)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("raylight", {})
        self.env_steps = int(state.get("env_steps", 0))
        self.episodes = int(state.get("episodes", 0))
        self.policy_version = int(state.get("policy_version", 0))
        self.recent_returns.extend(state.get("recent_returns", []))
        self.recent_lengths.extend(state.get("recent_lengths", []))
        self._rate_steps0 = self.env_steps
        for key in ("obs_moments", "return_moments"):
            saved = state.get(key)
            if getattr(self, key) is not None and saved is not None:
                setattr(self, key, Moments(float(saved["count"]), np.asarray(saved["mean"], np.float64), np.asarray(saved["m2"], np.float64)))

