"""The RL kind of experiment: rollout workers + experience DataModule + an RL module + greedy evaluation.

Under several learner ranks (``trainer.num_workers: K``) this is decentralized data parallel as in
DD-PPO (Wijmans et al., ICLR 2020): rank r owns rollout workers r*W/K .. (r+1)*W/K - 1 (or one
in-process worker), its own replay buffer for DQN, and trains on its own experience; DDP averages
the gradients. Env-step counters are summed over ranks; rank 0 evaluates and writes checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from raylight.core.errors import CheckpointError, ConfigError
from raylight.core.registry import get_algorithm
from raylight.core.task import BestMetric, ExportOptions, RankContext, RankParts
from raylight.rl.checkpointing import EnvStepCheckpoints
from raylight.rl.config import RLExperimentConfig, resolved_stop_return
from raylight.rl.envs import resolve_env_id, single_spaces
from raylight.rl.evaluation import EvaluationCallback
from raylight.rl.experience import RolloutDataModule
from raylight.rl.learner import Learner
from raylight.rl.pretrained import load_pretrained_encoder, resolve_encoder
from raylight.rl.progress import RLProgress
from raylight.rl.rollout import RolloutGroup


class RLTask:
    kind = "rl"
    config_cls = RLExperimentConfig
    best_metric = BestMetric("eval/return_mean", "max")
    step_metric = "env_steps"  # every RL metric is plotted against env steps, not gradient updates
    torch_threads = 1  # small nets, cores shared with rollout workers: two threads on a busy 2-core box ran 20x slower
    sweep_metric = "best_eval_return_mean"
    summary_keys = ("env_steps", "episodes", "eval_return_mean", "eval_return_std", "best_eval_return_mean", "best_eval_env_steps",
                    "stale_batches_dropped", "rollout_busy_s", "learner_busy_s")  # the numbers summary() writes

    def check(self, cfg: RLExperimentConfig) -> None:
        if cfg.env.backend == "gymnasium":
            resolve_env_id(cfg.env.id)
        ranks, workers = cfg.trainer.num_workers, cfg.rollout.num_workers
        if workers % ranks:
            raise ConfigError(
                f"rollout.num_workers: {workers} must be 0 or a multiple of trainer.num_workers ({ranks}): "
                "each learner rank owns an equal share of the rollout workers"
            )
        resolve_encoder(cfg.agent)  # agent.encoder -> agent.encoder_arch, saved with the run's config
        self.build_module(cfg)  # an algorithm/env mismatch (e.g. DQN on a Box action space) or an unfit encoder fails here

    def check_resume(self, cfg: RLExperimentConfig, saved_config: dict[str, Any], checkpoint: dict[str, Any]) -> None:
        saved_env = (saved_config.get("env") or {}).get("id")
        if saved_env != cfg.env.id:
            raise CheckpointError(f"--resume: the checkpoint trained on env {saved_env!r}, the config says env.id={cfg.env.id!r}")
        done = int((checkpoint.get("raylight") or {}).get("env_steps", 0))
        if done >= cfg.trainer.total_env_steps:
            raise ConfigError(
                f"trainer.total_env_steps: the checkpoint already ran {done:,} env steps (budget {cfg.trainer.total_env_steps:,}); "
                "raise trainer.total_env_steps to continue it"
            )

    def export(self, source: Path, options: ExportOptions) -> dict[str, Any]:
        """The greedy policy as ONNX, TorchScript or safetensors, with ``policy.json`` (``raylight.rl.export``)."""
        from raylight.rl.export import export_policy

        return export_policy(
            source, options.out, options.format or "safetensors", which=options.which or "best",
            overwrite=options.overwrite, trust_checkpoint_env=options.trust_checkpoint_env,
        )

    def uses_ray(self, cfg: RLExperimentConfig) -> bool:
        return cfg.rollout.num_workers > 0

    def actor_cpus(self, cfg: RLExperimentConfig) -> float:
        return cfg.rollout.num_workers // cfg.trainer.num_workers * cfg.rollout.cpus_per_worker

    def build_module(self, cfg: RLExperimentConfig) -> Learner:
        obs_space, act_space = single_spaces(cfg.env)
        return get_algorithm(cfg.algo).module_cls(cfg, obs_space, act_space)

    def build(self, cfg: RLExperimentConfig, run_dir: Path, ctx: RankContext) -> RankParts:
        module = self.build_module(cfg)
        if getattr(cfg.agent, "encoder", None) is not None:  # a resumed run then restores its own weights over these
            load_pretrained_encoder(module, cfg.agent.encoder)
        group = RolloutGroup(cfg, module.actor_spec, ctx.rank, ctx.world_size)
        datamodule = RolloutDataModule(module, group, cfg.trainer.total_env_steps, ctx.world_size)
        evaluation = EvaluationCallback(cfg, run_dir)
        callbacks: list[pl.Callback] = [evaluation]
        if cfg.checkpoint.every_env_steps is not None:
            callbacks.append(EnvStepCheckpoints(cfg.checkpoint.every_env_steps))
        return RankParts(module, datamodule, callbacks, progress=RLProgress(cfg.trainer.total_env_steps, evaluation))

    def max_epochs(self, cfg: RLExperimentConfig, completed_epochs: int) -> int:
        # RL data is one endless stream cut by env steps, so a run is one Lightning epoch; a resumed
        # run gets one more epoch than its checkpoint had finished.
        return completed_epochs + 1

    def summary(self, cfg: RLExperimentConfig, parts: RankParts, trainer: pl.Trainer) -> dict[str, Any]:
        module: Any = parts.module
        evaluation = next(c for c in parts.callbacks if isinstance(c, EvaluationCallback))
        last = evaluation.history[-1] if evaluation.history else {}
        best = max(evaluation.history, key=lambda r: r["return_mean"]) if evaluation.history else {}
        return {
            "env_id": cfg.env.id,
            "env_steps": module.env_steps,
            "episodes": module.episodes,
            "eval_return_mean": last.get("return_mean"),
            "eval_return_std": last.get("return_std"),
            "best_eval_return_mean": best.get("return_mean"),
            "best_eval_env_steps": best.get("env_steps"),
            "stop_at_return": resolved_stop_return(cfg),
            "reached": evaluation.reached,
            "stop_reason": self._stop_reason(cfg, module, evaluation),
            "stale_batches_dropped": parts.datamodule.dataset.dropped_stale,
            # Busy time of this rank's rollout workers (summed over them) and of its learner: with the run's wall
            # time, how much of it each side worked (asynchronous learners overlap the two).
            "rollout_busy_s": module.sample_seconds,
            "learner_busy_s": module.update_seconds,
            "rollout_failures": parts.datamodule.dataset.group.budget.report(),
        }

    @staticmethod
    def _stop_reason(cfg: RLExperimentConfig, module: Any, evaluation: EvaluationCallback) -> str:
        if evaluation.reached is not None:
            r = evaluation.reached
            return f"reached eval return {r['return_mean']:.1f} >= {evaluation.stop_at_return:g} at {int(r['env_steps']):,} env steps"
        if module.env_steps >= cfg.trainer.total_env_steps:
            return f"env-step budget trainer.total_env_steps={cfg.trainer.total_env_steps:,} reached"
        return f"stopped at {module.env_steps:,} env steps"


RL_TASK = RLTask()
