"""The learning-curve PNG of an RL run."""

from pathlib import Path

from PIL import Image

from raylight.rl.plots import learning_curve


def test_learning_curve_draws_eval_and_training_returns(tmp_path: Path) -> None:
    history = [{"env_steps": 1000.0 * i, "return_mean": 10.0 * i, "return_std": 2.0, "train_return_mean": 8.0 * i if i else None}
               for i in range(5)]
    path = learning_curve(history, tmp_path / "curve.png", "dqn on CartPole-v1", target=475)
    with Image.open(path) as img:
        assert img.size == (600, 360)
        assert len(set(img.convert("RGB").getdata())) > 10  # lines, band and text, not a blank canvas
