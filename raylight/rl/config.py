"""RL experiment config: the env, rollout and eval sections, and RL's trainer and checkpoint keys."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from raylight.core.config import CheckpointConfig, ExperimentConfig, Section, TrainerConfig


class EnvConfig(Section):
    id: str = Field("CartPole-v1", description="Registered Gymnasium id (ALE/* with raylight[atari], MinAtar/* with raylight[minatar], MiniGrid-* with raylight[minigrid], seen as a one-hot 7x7 view), or a user env as 'module:Class' / 'module:make_fn'.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments passed to the env constructor.")
    max_episode_steps: int | None = Field(None, ge=1, description="Time limit (TimeLimit wrapper); None keeps the env's own.")
    frame_stack: int = Field(1, ge=1, description="Stack this many consecutive observations (FrameStackObservation).")
    atari_preprocessing: bool = Field(
        False, description="DeepMind Atari preprocessing (AtariPreprocessing): noop reset, frame skip 4 with max-pool (ALE v5 made with frameskip=1), 84x84 grayscale uint8."
    )
    episodic_life: bool = Field(False, description="Atari: a lost life ends the training episode (terminal_on_life_loss).")
    fire_reset: bool = Field(False, description="Atari: press FIRE after each reset, for games that wait for it.")
    normalize_obs: bool = Field(
        False,
        description="Normalize observations with running mean/std statistics shared by every env copy and worker, kept in "
        "checkpoints and frozen for evaluation and export (raylight.rl.normalization).",
    )
    obs_clip: float = Field(10.0, gt=0, description="With normalize_obs: clip normalized observations to +-obs_clip (SB3's clip_obs).")
    normalize_reward: bool = Field(
        False,
        description="Divide rewards by the std of a running discounted return (SB3 VecNormalize / gymnasium NormalizeReward), "
        "statistics shared by every worker and kept in checkpoints; episode returns in metrics and evaluation stay raw.",
    )
    reward_clip: float = Field(10.0, gt=0, description="With normalize_reward: clip scaled rewards to +-reward_clip.")
    clip_reward: bool = Field(
        False, description="Train on sign(reward) (DeepMind's Atari reward clipping); episode returns in metrics and evaluation stay raw."
    )
    reward_gamma: float = Field(0.99, gt=0, le=1, description="With normalize_reward: discount of the running return whose std scales rewards.")
    clip_actions: bool = Field(True, description="Clip continuous actions to the Box bounds when sent to the env.")
    backend: Literal["gymnasium", "envpool"] = Field(
        "gymnasium",
        description="Vector-env backend: gymnasium's SyncVectorEnv, or envpool's C++ batch (pip install envpool; its classic-control, "
        "Box2D, MuJoCo and Atari ids; videos still render through gymnasium).",
    )


class RolloutConfig(Section):
    num_workers: int = Field(0, ge=0, description="Ray rollout actors; 0 samples in the learner's process through the same interface.")
    envs_per_worker: int = Field(1, ge=1, description="Environment copies per worker, stepped as one gymnasium vector env.")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs Ray reserves for each rollout actor.")
    sample_timeout_s: float = Field(
        120.0, gt=0, description="A rollout actor that has not returned its batch after this long (frozen, lost) is replaced and its request re-issued."
    )
    max_failures: int = Field(
        3, ge=0, description="Rollout-actor failures (timeouts, deaths) tolerated over the whole run; one more stops the run cleanly."
    )
    placement: Literal["spread", "pack"] = Field(
        "spread", description="Rollout actors' placement group: spread over nodes where possible, or pack onto few (one bundle of cpus_per_worker each)."
    )


class EvalConfig(Section):
    every_env_steps: int = Field(5000, ge=1, description="Run a greedy evaluation every this many env steps.")
    episodes: int = Field(10, ge=1, description="Episodes per evaluation, on env copies separate from the training envs.")
    seed: int | None = Field(
        None,
        description="Seed of the evaluation episodes' starts; None: the run's seed. Fix it to compare runs of different seeds on the "
        "same start states (Pendulum's return depends much on where an episode starts).",
    )
    stop_at_return: float | Literal["auto"] | None = Field(
        None, description="Stop once eval/return_mean reaches this value; 'auto': the env's registered reward_threshold (CartPole-v1: 475); None: never."
    )


class RLTrainerConfig(TrainerConfig):
    total_env_steps: int = Field(100_000, ge=1, description="Stop after this many environment steps (all learner ranks together).")
    log_every_env_steps: int = Field(
        1000, ge=1, description="Log training metrics at most once per this many env steps (evaluations are logged when they run)."
    )


class RLCheckpointConfig(CheckpointConfig):
    every_env_steps: int | None = Field(
        None,
        ge=1,
        description="Also write last.ckpt whenever the env-step counter crosses a multiple of this, so the work a learner "
        "recovery (trainer.max_failures) loses is bounded in env steps; None: only checkpoint.every_iterations.",
    )
    include_replay: bool = Field(
        False,
        description="Store the DQN replay buffer (its filled rows) in last.ckpt -- never in periodic or best checkpoints -- so a resumed "
        "run continues exactly (one learner rank only); off: a resumed run refills its buffer. A 100k-transition buffer of CartPole "
        "observations is ~3.6 MB, of 84x84x4 Atari frames ~5.6 GB.",
    )


class RLExperimentConfig(ExperimentConfig):
    env: EnvConfig = Field(default_factory=EnvConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    trainer: RLTrainerConfig = Field(default_factory=RLTrainerConfig)
    checkpoint: RLCheckpointConfig = Field(default_factory=RLCheckpointConfig)

    @property
    def envs_per_rank(self) -> int:
        """Env copies one learner rank steps: its share of the rollout workers x envs_per_worker."""
        return max(self.rollout.num_workers // self.trainer.num_workers, 1) * self.rollout.envs_per_worker

    @property
    def subject(self) -> str:
        """'CartPole-v1' -> 'cartpole'; 'ALE/Pong-v5' -> 'pong'; 'pkg.mod:MyEnv' -> 'myenv'."""
        stem = re.split(r"[:/]", self.env.id)[-1]
        return re.sub(r"-v\d+$", "", stem).lower() or "env"


def resolved_stop_return(cfg: RLExperimentConfig) -> float | None:
    """``eval.stop_at_return`` with 'auto' replaced by the env's registered reward threshold."""
    stop: Any = cfg.eval.stop_at_return
    if stop != "auto":
        return stop
    import gymnasium as gym

    try:
        threshold = gym.spec(cfg.env.id).reward_threshold
    except Exception:  # noqa: BLE001 - user envs ('module:Class') have no registered spec
        threshold = None
    return None if threshold is None else float(threshold)
