"""Every registered kind's Task carries the defaults the core asks for instead of naming kinds."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from raylight.core.registry import algorithm_names, get_algorithm

ROOT = Path(__file__).resolve().parents[1]


def test_every_task_declares_its_defaults() -> None:
    tasks = {get_algorithm(name).task.kind: get_algorithm(name).task for name in algorithm_names()}
    for kind, task in tasks.items():
        assert isinstance(task.sweep_metric, str) and task.sweep_metric, kind
        assert task.torch_threads is None or task.torch_threads >= 1, kind
    assert tasks["rl"].torch_threads == 1 and tasks["rl"].sweep_metric == "best_eval_return_mean"
    assert tasks["rl"].best_metric is not None and tasks["rl"].best_metric.key == "eval_return_mean"
    assert tasks["pretrain"].sweep_metric == "probe_accuracy" and tasks["finetune"].sweep_metric == "test_accuracy"
    assert tasks["text-finetune"].sweep_metric == "test_accuracy"


def test_every_task_reports_its_sweep_metric() -> None:
    from raylight.core.run import summary_keys

    for name in algorithm_names():
        task = get_algorithm(name).task
        assert task.sweep_metric in summary_keys(task), (name, task.sweep_metric)


@pytest.mark.parametrize(
    ("config", "overrides"),
    [
        ("dqn-cartpole.yaml", ["trainer.total_env_steps=512", "agent.learning_starts=128", "agent.train_freq=64", "agent.gradient_steps=8",
                               "agent.hidden=[8]", "eval.every_env_steps=256", "eval.episodes=1", "eval.stop_at_return=null"]),
        ("dae-digits.yaml", ["trainer.max_epochs=1", "data.num_readers=0"]),
    ],
)
def test_a_run_writes_only_the_numeric_summary_keys_its_kind_declares(run_root: str, config: str, overrides: list[str]) -> None:
    """What a sweep's metric is checked against before any trial (``Task.summary_keys``) is what ``summary.json`` holds."""
    from raylight.core.config import load_config
    from raylight.core.run import summary_keys, train
    from tests.helpers import quiet

    result = train(load_config(ROOT / "configs" / config, [*quiet(run_root), *overrides]))
    task = get_algorithm(result.metrics["algo"]).task
    numeric = {k for k, v in json.loads((result.run_dir / "summary.json").read_text()).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    assert task.sweep_metric in numeric
    assert {k for k in numeric if not any(fnmatchcase(k, key) for key in summary_keys(task))} == set()
