"""The evaluation callback's resume state: what "reached" means when a resumed run changes its threshold."""

from __future__ import annotations

from pathlib import Path

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
