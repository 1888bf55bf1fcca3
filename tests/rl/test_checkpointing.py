"""``checkpoint.every_env_steps``: last.ckpt whenever the env-step counter crosses a multiple (issue 22)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raylight.core import callbacks
from raylight.core.checkpoints import load_checkpoint_file
from raylight.core.config import load_config
from raylight.core.run import train
from tests.helpers import quiet

PPO = Path(__file__).resolve().parents[2] / "configs" / "ppo-cartpole.yaml"


def test_last_checkpoint_is_written_each_time_env_steps_cross_a_multiple(run_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PPO takes 256 env steps an iteration (8 envs x 32): with every_env_steps=600 last.ckpt is written after the
    iterations that cross 600, 1200, 1800, ... (768, 1280, 2048, ...) and at the end; `every_iterations` never fires."""
    saves: list[int] = []
    save = callbacks._save_checkpoint

    def recording(trainer: Any, path: Path, resume_state: bool) -> None:
        save(trainer, path, resume_state)
        if path.name == "last.ckpt":  # the env steps the file itself records
            saves.append(int(load_checkpoint_file(path)["raylight"]["env_steps"]))

    monkeypatch.setattr(callbacks, "_save_checkpoint", recording)
    cfg = load_config(PPO, [*quiet(run_root), "checkpoint.every_env_steps=600", "trainer.total_env_steps=4096", "agent.n_epochs=2",
                            "eval.every_env_steps=100000", "eval.episodes=1", "eval.stop_at_return=null"])
    result = train(cfg)
    assert result.metrics["env_steps"] == 4096
    assert saves == [768, 1280, 2048, 2560, 3072, 3840, 4096]
