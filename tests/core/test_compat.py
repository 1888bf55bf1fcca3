"""Checkpoints of earlier releases keep working (issue 22): every fixture under tests/fixtures/checkpoints/
(written by ``make_fixtures.py`` of its release and never edited) is resumed, evaluated, exported and fine-tuned
from by today's code; an unknown future format is refused in one line; config keys renamed between formats
are moved by the one migration registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from raylight.core.checkpoints import CHECKPOINT_FORMAT, FORMAT_KEY, Migration, load_checkpoint_file, migrate
from raylight.core.cli import main
from raylight.core.errors import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "checkpoints"
RELEASES = sorted(p for p in FIXTURES.iterdir() if p.is_dir() and (p / "recipes.json").is_file())
QUIET = ["tracking.backend=none", "trainer.progress_bar=false", "checkpoint.every_iterations=1000"]
MORE = {"dqn": ["trainer.total_env_steps=768"], "ppo": ["trainer.total_env_steps=512"], "ae": ["trainer.max_epochs=2"],
        "mlm": ["trainer.max_epochs=2"]}


def _fixture(release: Path, name: str, tmp_path: Path) -> tuple[Path, str, list[str]]:
    recipe = json.loads((release / "recipes.json").read_text())[name]
    ckpt = tmp_path / f"{name}.ckpt"
    shutil.copy(release / f"{name}.ckpt", ckpt)  # never touch the committed file
    return ckpt, str(ROOT / "configs" / recipe["config"]), [o.replace("{fixtures}", str(FIXTURES)) for o in recipe["overrides"]]


def _ok(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, (argv, captured.err[-2000:])
    return captured.out


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
@pytest.mark.parametrize("name", ["dqn", "ppo"])
def test_rl_fixture_resumes_evaluates_and_exports(release: Path, name: str, tmp_path: Path, capsys) -> None:
    from raylight.rl.exported import load_exported_policy

    ckpt, config, overrides = _fixture(release, name, tmp_path)
    assert load_checkpoint_file(ckpt)[FORMAT_KEY] == CHECKPOINT_FORMAT
    out = json.loads(_ok(capsys, ["train", config, *overrides, *QUIET, *MORE[name], f"run_root={tmp_path / 'runs'}", "--resume", str(ckpt)]))
    assert out["status"] == "completed" and out["env_steps"] >= int(MORE[name][0].split("=")[1])
    assert "return_mean" in json.loads(_ok(capsys, ["evaluate", str(ckpt), "--episodes", "1"]))
    _ok(capsys, ["export", str(ckpt), "--out", str(tmp_path / "policy")])
    policy = load_exported_policy(tmp_path / "policy")
    assert policy(np.zeros((3, 4), np.float32)).shape == (3,)


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_ae_fixture_resumes_exports_and_fine_tunes(release: Path, tmp_path: Path, capsys) -> None:
    ckpt, config, overrides = _fixture(release, "ae", tmp_path)
    out = json.loads(_ok(capsys, ["train", config, *overrides, *QUIET, *MORE["ae"], f"run_root={tmp_path / 'runs'}", "--resume", str(ckpt)]))
    assert out["status"] == "completed"
    _ok(capsys, ["export", str(ckpt), "--out", str(tmp_path / "encoder")])
    assert list((tmp_path / "encoder").glob("*.safetensors"))
    out = json.loads(_ok(capsys, ["finetune", str(ROOT / "configs" / "finetune-digits.yaml"), "--from", str(ckpt), *QUIET,
                                  "trainer.max_epochs=1", f"run_root={tmp_path / 'ft'}"]))
    assert out["status"] == "completed"


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_mlm_fixture_resumes_exports_and_fine_tunes(release: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("transformers")
    ckpt, config, overrides = _fixture(release, "mlm", tmp_path)
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    out = json.loads(_ok(capsys, ["train", config, *overrides, *QUIET, *MORE["mlm"], cache, f"run_root={tmp_path / 'runs'}",
                                  "--resume", str(ckpt)]))
    assert out["status"] == "completed"
    _ok(capsys, ["export", str(ckpt), "--out", str(tmp_path / "hf")])
    assert (tmp_path / "hf" / "config.json").is_file()
    rows = tmp_path / "rows.csv"
    rows.write_text("text,label\n" + "".join(f"the quick brown fox {i},{'ab'[i % 2]}\n" for i in range(40)))
    out = json.loads(_ok(capsys, ["finetune", str(ROOT / "configs" / "finetune-docstrings.yaml"), "--from", str(ckpt), *QUIET,
                                  f"data.corpus={rows}", cache, "data.max_length=16", "data.num_readers=0", "data.num_shards=1",
                                  "trainer.max_epochs=1", f"run_root={tmp_path / 'ft'}"]))
    assert out["status"] == "completed"


def test_a_checkpoint_of_a_newer_release_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    ckpt = torch.load(RELEASES[-1] / "dqn.ckpt", weights_only=True)
    ckpt[FORMAT_KEY] = CHECKPOINT_FORMAT + 1
    future = tmp_path / "future.ckpt"
    torch.save(ckpt, future)
    with pytest.raises(CheckpointError, match=rf"checkpoint format {CHECKPOINT_FORMAT + 1} is newer than this raylight reads"):
        load_checkpoint_file(future)
    assert main(["evaluate", str(future), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "upgrade raylight" in err[0], err


def test_migrations_rename_config_keys_from_the_checkpoints_version_on() -> None:
    """The registry's mechanism, with a made-up format 2 and 3: a format-1 checkpoint gets both steps, a format-2
    one only the second; a checkpoint without the field counts as format 1."""
    steps = [Migration(2, "PPO's batch_size became minibatch_size", {"agent.batch_size": "agent.minibatch_size"}),
             Migration(3, "eval moved under evaluation", {"eval.episodes": "evaluation.episodes"},
                       apply=lambda c: c.setdefault("notes", []).append("3"))]
    old = {"hyper_parameters": {"config": {"agent": {"batch_size": 64, "lr": 1.0}, "eval": {"episodes": 5}}}}
    migrate(old, Path("old.ckpt"), steps, current=3)
    assert old["hyper_parameters"]["config"] == {"agent": {"minibatch_size": 64, "lr": 1.0}, "eval": {}, "evaluation": {"episodes": 5}}
    assert old[FORMAT_KEY] == 3 and old["notes"] == ["3"]
    two = {FORMAT_KEY: 2, "hyper_parameters": {"config": {"agent": {"batch_size": 7}}}}
    migrate(two, Path("two.ckpt"), steps, current=3)
    assert two["hyper_parameters"]["config"] == {"agent": {"batch_size": 7}} and "notes" in two
