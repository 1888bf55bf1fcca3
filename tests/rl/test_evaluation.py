"""The evaluation callback's resume state: what "reached" means when a resumed run changes its threshold."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from raylight.core.config import load_config
from raylight.rl.evaluation import EvaluationCallback, first_reaching

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
HISTORY = [{"env_steps": 1000.0, "return_mean": 120.0}, {"env_steps": 2000.0, "return_mean": 480.0},
           {"env_steps": 3000.0, "return_mean": 500.0}]


def test_first_reaching_is_the_first_row_at_or_above_the_threshold() -> None:
    assert first_reaching(HISTORY, 475.0) == HISTORY[1]
    assert first_reaching(HISTORY, 100.0) == HISTORY[0]
    assert first_reaching(HISTORY, 501.0) is None
    assert first_reaching(HISTORY, None) is None


def test_resuming_with_another_threshold_re_derives_reached(tmp_path: Path) -> None:
    """A run stopped at 475, resumed with eval.stop_at_return=null: nothing was reached under the new setting
    (the saved row used to be restored, and the summary then crashed formatting a None threshold)."""
    saved = {"history": HISTORY, "reached": HISTORY[1], "elapsed": 12.0}
    for threshold, expected in (("null", None), ("490", HISTORY[2]), ("475", HISTORY[1])):
        callback = EvaluationCallback(load_config(CONFIGS / "ppo-cartpole.yaml", [f"eval.stop_at_return={threshold}"]), tmp_path)
        callback.load_state_dict(saved)
        assert callback.reached == expected, threshold
        assert callback.history == HISTORY


def test_eval_seed_fixes_the_evaluation_starts_across_run_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """eval.seed makes runs of different seeds evaluate on the same episodes; unset, each run uses its own seed."""
    import numpy as np

    import raylight.rl.evaluation as evaluation

    seen: list[int] = []

    def fake_evaluate(actor: object, env_cfg: object, episodes: int, seed: int) -> evaluation.EvalResult:
        seen.append(seed)
        return evaluation.EvalResult(np.zeros(episodes), np.ones(episodes))

    monkeypatch.setattr(evaluation, "evaluate_policy", fake_evaluate)
    module = SimpleNamespace(cpu_actor=lambda: None, env_steps=0, recent_returns=[])
    for overrides in (["seed=3"], ["seed=4"], ["seed=3", "eval.seed=7"], ["seed=4", "eval.seed=7"]):
        EvaluationCallback(load_config(CONFIGS / "ppo-cartpole.yaml", overrides), tmp_path)._evaluate_here(module)
    assert seen == [3, 4, 7, 7]
