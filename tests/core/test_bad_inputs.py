"""Bad inputs of issue 22 (items 9-11): each one line, exit 2, before any run directory exists."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from raylight.core.cli import main

ROOT = Path(__file__).resolve().parents[2]
DQN = str(ROOT / "configs" / "dqn-cartpole.yaml")
MLM = str(ROOT / "configs" / "mlm-python-docs.yaml")
FINETUNE = str(ROOT / "configs" / "finetune-docstrings.yaml")


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("raylight: error: ")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    return errors[0]


def _corpus(tmp_path: Path, name: str, data: bytes) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "part-0.txt").write_bytes(data)
    return str(folder)


def _cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jumbo boxes".split()
    rng = np.random.default_rng(0)
    good = "\n\n".join(" ".join(rng.choice(words, 12)) for _ in range(400)).encode()
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": -5, "num_attention_heads": 0, "vocab_size": 100}))
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "empty.yaml").write_text("parameters: {}\n")
    (sweeps / "reversed.yaml").write_text("parameters:\n  agent.lr: {uniform: [0.1, 0.001]}\n")
    (sweeps / "logzero.yaml").write_text("parameters:\n  agent.lr: {loguniform: [0, 0.1]}\n")
    blank = _corpus(tmp_path, "blank", b"  \n\n\t\n")
    latin1 = _corpus(tmp_path, "latin1", good + "caf\xe9 cr\xe8me".encode("latin-1"))
    text = [f"data.cache_dir={tmp_path / 'cache'}", "data.vocab_size=200", "data.max_length=32"]
    return [
        (["train", DQN, "env.atari_preprocessing=true"], "env.atari_preprocessing: CartPole-v1 is not an Atari (ALE) env"),
        (["train", MLM, f"data.corpus={_corpus(tmp_path, 'ok', good)}", *text, "agent.hidden_size=129"],
         "agent.hidden_size: 129 is not a multiple of num_attention_heads (2"),
        (["finetune", FINETUNE, "--from", str(hf)], "hidden_size must be a positive integer, not -5"),
        (["train", MLM, f"data.corpus={_corpus(tmp_path, 'empty', b'')}", *text], "the corpus holds no text"),
        (["train", MLM, f"data.corpus={blank}", *text], "the corpus holds no text"),
        (["train", MLM, f"data.corpus={_corpus(tmp_path, 'binary', rng.bytes(200_000))}", *text], "part-0.txt: binary data"),
        (["train", MLM, f"data.corpus={latin1}", *text],
         "part-0.txt: not valid UTF-8 at byte"),
        (["train", MLM, f"data.corpus={_corpus(tmp_path, 'oneline', b'just one line of text here')}", *text],
         "the held-out test split is empty"),
        (["train", DQN, "--seeds", "-1"], "--seeds: '-1': seeds must be 0 or more"),
        (["train", DQN, "--seeds", "1,,2"], "--seeds: '1,,2' is not a list of integers"),
        (["train", DQN, "--seeds", "0,1", "trainer.max_failures=1"], "trainer.max_failures: seeds and sweeps run each trial in a Ray Tune worker"),
        (["sweep", DQN, str(sweeps / "empty.yaml")], "parameters: name at least one config key"),
        (["sweep", DQN, str(sweeps / "reversed.yaml")], "parameters.agent.lr.uniform: low 0.1 must be below high 0.001"),
        (["sweep", DQN, str(sweeps / "logzero.yaml")], "parameters.agent.lr.loguniform: low 0 must be positive"),
        (["export", str(tmp_path), "--out", str(tmp_path / "out"), "--format", ""], "--format: empty"),
    ]


def test_bad_inputs_of_issue_22_are_one_line_exit_2_and_write_nothing(capsys, run_root, tmp_path) -> None:
    for argv, expected in _cases(tmp_path):
        if argv[0] in ("train", "sweep", "finetune"):
            argv = [*argv, f"run_root={run_root}", "trainer.progress_bar=false"]
        assert main(argv) == 2, argv
        line = _one_line(capsys)
        assert expected in line, (argv, line)
        assert not Path(run_root).exists() or not any(Path(run_root).iterdir()), f"a run dir was left by {argv}"
    assert not (tmp_path / "out").exists()


def test_submit_to_an_address_without_a_scheme_answers_at_once(capsys, tmp_path) -> None:
    """`--address 127.0.0.1:1` (no http://) used to wait 55 s for a 4-line error: it is read as http://."""
    t0 = time.perf_counter()
    assert main(["submit", DQN, "--address", "127.0.0.1:1"]) == 2
    line = _one_line(capsys)
    assert "http://127.0.0.1:1" in line, line
    assert time.perf_counter() - t0 < 20


def test_jobs_list_says_when_there_are_none(capsys, monkeypatch) -> None:
    import raylight.core.jobs

    class NoJobs:
        def list_jobs(self) -> list:
            return []

    monkeypatch.setattr(raylight.core.jobs, "client", lambda address: NoJobs())
    assert main(["jobs", "list", "--address", "http://127.0.0.1:8265"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "raylight: no jobs on the cluster at http://127.0.0.1:8265" in captured.err
