"""Corpus files: listing, shard plans (disjoint, covering, balanced), byte-range reading, errors."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from raylight.core.errors import ConfigError
from raylight.ssl.text import corpus
from raylight.ssl.text.corpus import (
    TASK_PACKAGES,
    TEXT_SUFFIXES,
    FileRange,
    builtin_corpus,
    builtin_task,
    list_corpus_files,
    plan_shards,
    read_documents,
    resolve_corpus,
)

WORDS = ["alpha", "beta", "gamma", "délta", "ε", "zeta", "eta", "theta", "日本", "kappa"]


def _random_text(rng: np.random.Generator, num_lines: int) -> str:
    """Lines of words, blank and whitespace-only lines, some CRLF endings, sometimes no final newline."""
    lines = []
    for _ in range(num_lines):
        kind = rng.random()
        if kind < 0.15:
            lines.append("" if rng.random() < 0.5 else "  \t")
        else:
            words = rng.choice(WORDS, size=int(rng.integers(1, 12)))
            lines.append(" ".join(words) + ("\r" if rng.random() < 0.1 else ""))
    return "\n".join(lines) + ("\n" if rng.random() < 0.7 else "")


def _ranges(path: Path, rng: np.random.Generator, count: int) -> list[FileRange]:
    """Ranges covering ``path`` at random bytes, plus cuts right at and right after line starts."""
    data = path.read_bytes()
    newlines = [i for i, b in enumerate(data) if b == ord("\n")]
    cuts = set(rng.integers(1, len(data), size=count).tolist())
    cuts |= set(rng.choice(newlines, size=min(3, len(newlines))).tolist())
    cuts |= {n + 1 for n in rng.choice(newlines, size=min(3, len(newlines)))}
    bounds = sorted({0, len(data)} | {c for c in cuts if 0 < c < len(data)})
    return [FileRange(str(path), a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def test_list_corpus_files(tmp_path: Path) -> None:
    for name in ["b/2.txt", "a.jsonl", "b/c/3.parquet", "notes.md", ".hidden/x.txt", "b/.tmp.txt", "d.txt.gz"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_corpus_files(tmp_path)] == [
        "a.jsonl", "b/2.txt", "b/c/3.parquet", "d.txt.gz"]
    assert list_corpus_files(tmp_path / "a.jsonl") == [tmp_path / "a.jsonl"]
    with pytest.raises(ConfigError, match="not a corpus file"):
        list_corpus_files(tmp_path / "notes.md")
    with pytest.raises(ConfigError, match="does not exist"):
        list_corpus_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as e:
        list_corpus_files(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value) and all(s in str(e.value) for s in TEXT_SUFFIXES)


def test_whole_files_balance_largest_first(tmp_path: Path) -> None:
    files = []
    for i, size in enumerate([100, 90, 80, 30, 20, 10, 0]):
        files.append(tmp_path / f"{i}.txt")
        files[-1].write_bytes(b"x" * size)
    shards = plan_shards(files, 3)
    assert [sum(r.stop - r.start for r in s) for s in shards] == [110, 110, 110]
    assert sorted(r.path for s in shards for r in s) == sorted(str(f) for f in files[:6])  # empty file left out
    assert all(r.start == 0 for s in shards for r in s)
    with pytest.raises(ConfigError, match="num_shards"):
        plan_shards(files, 0)


def test_few_files_are_cut_into_disjoint_covering_ranges(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = []
    for i, lines in enumerate([300, 40, 900]):
        files.append(tmp_path / f"{i}.txt")
        files[-1].write_text(_random_text(rng, lines))
    gz = tmp_path / "z.txt.gz"
    gz.write_bytes(gzip.compress(b"compressed line\n" * 100))
    files.append(gz)
    shards = plan_shards(files, 7)
    assert len(shards) == 7
    for f in files:
        ranges = sorted((r.start, r.stop) for s in shards for r in s if r.path == str(f))
        assert ranges[0][0] == 0 and ranges[-1][1] == f.stat().st_size
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # disjoint, no gap
    assert sum(1 for s in shards for r in s if r.path == str(gz)) == 1  # compressed: never cut
    totals = [sum(r.stop - r.start for r in s) for s in shards]
    assert max(totals) - min(totals) <= gz.stat().st_size + 2
    lines = [seg for s in shards for r in s for doc in read_documents(r) for seg in doc]
    expected = [ln.strip() for f in files for ln in (gzip.open(f, "rt") if f == gz else open(f, newline="")).read().split("\n")]
    assert lines == [ln for ln in expected if ln]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_text_ranges_read_every_line_once(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    path = tmp_path / "corpus.txt"
    text = _random_text(rng, 400)
    path.write_bytes(text.encode())
    expected = [ln.strip() for ln in text.split("\n") if ln.strip()]
    whole = list(read_documents(FileRange(str(path), 0, path.stat().st_size)))
    assert [seg for doc in whole for seg in doc] == expected
    filled = [bool(ln.strip()) for ln in text.split("\n")]
    num_docs = sum(1 for i, f in enumerate(filled) if f and (i == 0 or not filled[i - 1]))
    assert len(whole) == num_docs  # one document per blank-line-separated block
    for count in (1, 5, 40):
        ranges = _ranges(path, rng, count)
        read = [seg for r in ranges for doc in read_documents(r) for seg in doc]
        assert read == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_jsonl_ranges_read_every_record_once(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    records = [{"text": _random_text(rng, int(rng.integers(1, 6))), "id": i} for i in range(300)]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=bool(i % 2)) + "\n" + ("\n" if i % 7 == 0 else "")
                            for i, r in enumerate(records)), encoding="utf-8")
    expected = [[ln.strip() for ln in r["text"].splitlines() if ln.strip()] for r in records]
    expected = [doc for doc in expected if doc]
    assert list(read_documents(FileRange(str(path), 0, path.stat().st_size))) == expected
    for count in (3, 50):
        assert [doc for r in _ranges(path, rng, count) for doc in read_documents(r)] == expected


def test_jsonl_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"text": "fine too"}\n{"text": broken}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:3: not valid JSON"):
        list(read_documents(FileRange(str(path), 0, path.stat().st_size)))
    with pytest.raises(ConfigError, match=r"bad\.jsonl:3: not valid JSON"):
        list(read_documents(FileRange(str(path), 20, path.stat().st_size)))  # line numbers are absolute
    path.write_text('{"text": "fine"}\n{"body": "no text"}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: record has no 'text' field"):
        list(read_documents(FileRange(str(path), 0, path.stat().st_size)))
    path.write_text('{"text": 3}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:1: field 'text' is int"):
        list(read_documents(FileRange(str(path), 0, path.stat().st_size)))


def test_json_array_gzip_and_parquet(tmp_path: Path) -> None:
    array = tmp_path / "records.json"
    array.write_text(json.dumps([{"text": "one\ntwo"}, {"text": None}, {"text": "three"}]))
    assert [r for s in plan_shards([array], 3) for r in s] == [FileRange(str(array), 0, array.stat().st_size)]
    assert list(read_documents(FileRange(str(array), 0, array.stat().st_size))) == [["one", "two"], ["three"]]
    lines = tmp_path / "lines.json"  # .json holding JSON Lines
    lines.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert list(read_documents(FileRange(str(lines), 0, lines.stat().st_size))) == [["a"], ["b"]]
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "x"}\n{"text": "y\\nz"}\n'))
    assert list(read_documents(FileRange(str(gz), 0, gz.stat().st_size))) == [["x"], ["y", "z"]]

    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    table = pa.table({"text": [f"row {i}\nsecond line" if i % 5 else None for i in range(100)], "n": list(range(100))})
    parquet = tmp_path / "t.parquet"
    pq.write_table(table, parquet, row_group_size=10)
    shards = plan_shards([parquet, array], 4)
    groups = sorted((r.start, r.stop) for s in shards for r in s if r.path == str(parquet))
    assert groups[0][0] == 0 and groups[-1][1] == 10 and all(a[1] == b[0] for a, b in zip(groups, groups[1:], strict=False))
    docs = [doc for s in shards for r in s if r.path == str(parquet) for doc in read_documents(r)]
    assert docs == [[f"row {i}", "second line"] for i in range(100) if i % 5]
    with pytest.raises(ConfigError, match="no column 'body'"):
        list(read_documents(FileRange(str(parquet), 0, 10), text_field="body"))


# Built-in data: CPython's documentation (corpus) and its docstrings by package (labelled task).


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    cache = tmp_path_factory.mktemp("builtin")
    return (builtin_corpus("python-docs", cache), *builtin_task("python-docstrings", cache))


def _rows(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _all_documents(folder: Path) -> list[list[str]]:
    return [doc for f in list_corpus_files(folder) for doc in read_documents(FileRange(str(f), 0, f.stat().st_size))]


def test_builtin_corpus_is_real_english(builtin: tuple[Path, Path, Path]) -> None:
    folder = builtin[0]
    files = list_corpus_files(folder)
    assert [f.name for f in files] == [f"python-docs-{k:02d}.txt" for k in range(8)]
    sizes = [f.stat().st_size for f in files]
    assert sum(sizes) > 1_000_000 and max(sizes) < 1.2 * min(sizes)
    docs = _all_documents(folder)
    assert len(docs) > 4000
    assert any(doc[0] == 'The "yield" statement' for doc in docs)  # a pydoc topic
    assert (folder / "VERSION").read_text().startswith("python-docs v")
    before = [f.stat().st_mtime_ns for f in files]
    assert builtin_corpus("python-docs", folder.parent) == folder  # built once, then reused
    assert [f.stat().st_mtime_ns for f in files] == before


def test_builtin_task_has_eight_packages(builtin: tuple[Path, Path, Path]) -> None:
    train, test = _rows(builtin[1]), _rows(builtin[2])
    assert 1400 < len(train) + len(test) < 2200
    assert 0.15 < len(test) / (len(train) + len(test)) < 0.25
    assert {r["label"] for r in train} == {r["label"] for r in test} == set(TASK_PACKAGES)
    assert not {r["text"] for r in train} & {r["text"] for r in test}
    assert all(len(r["text"]) > 40 and r["source"].startswith(r["label"] + "/") for r in train + test)


def test_held_out_docstrings_are_not_in_the_corpus(builtin: tuple[Path, Path, Path]) -> None:
    in_corpus = {"\n".join(doc) for doc in _all_documents(builtin[0])}
    held_out = [corpus._document(r["text"]) for r in _rows(builtin[2])]  # as the reader returns them
    assert held_out and not any(doc in in_corpus for doc in held_out)
    train = [corpus._document(r["text"]) for r in _rows(builtin[1])]
    assert np.mean([doc in in_corpus for doc in train]) > 0.95  # so the check above would see them


def _small_stdlib(root: Path) -> Path:
    """A copy of a few stdlib packages and modules: the extraction's input, small enough to parse quickly."""
    real = Path(sysconfig.get_paths()["stdlib"])
    for name in ("email", "json", "http"):
        shutil.copytree(real / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(real / "textwrap.py", root / "textwrap.py")
    return root


def test_builtin_data_is_identical_across_processes(tmp_path: Path) -> None:
    root = _small_stdlib(tmp_path / "stdlib")
    script = (
        "import sys; from pathlib import Path; import raylight.ssl.text.corpus as c; "
        "c._stdlib_root = lambda: Path(sys.argv[1]); "
        "c.builtin_corpus('python-docs', Path(sys.argv[2])); c.builtin_task('python-docstrings', Path(sys.argv[2]))"
    )
    for seed in ("1", "2"):  # Python's str hash differs with the seed; the data must not
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(root), str(tmp_path / seed)], check=True, env=env)
    one, two = (sorted(p.relative_to(tmp_path / s) for p in (tmp_path / s).rglob("*") if p.is_file()) for s in "12")
    assert one == two and len(one) == 8 + 1 + 2 + 1
    assert all((tmp_path / "1" / p).read_bytes() == (tmp_path / "2" / p).read_bytes() for p in one)
    assert {r["label"] for r in _rows(tmp_path / "1" / "python-docstrings" / "train.jsonl")} == {"email", "http"}


def test_builtin_rebuilds_another_version_and_names_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _small_stdlib(tmp_path / "stdlib")
    monkeypatch.setattr(corpus, "_stdlib_root", lambda: root)
    cache = tmp_path / "cache"
    train, _ = builtin_task("python-docstrings", cache)
    (train.parent / "VERSION").write_text("python-docstrings v0 python 2.7\n")
    train.write_text("stale\n")
    assert builtin_task("python-docstrings", cache)[0] == train and train.read_text() != "stale\n"
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folder left behind
    (cache / "python-docs").mkdir()  # not ours: never deleted
    with pytest.raises(ConfigError, match="not a built-in dataset"):
        builtin_corpus("python-docs", cache)
    (cache / "python-docs").rmdir()
    with pytest.raises(ConfigError, match="python-docs"):
        builtin_corpus("wikipedia", cache)
    with pytest.raises(ConfigError, match="python-docstrings"):
        builtin_task("imdb", cache)
    assert resolve_corpus(str(tmp_path), cache) == tmp_path
    assert resolve_corpus("python-docs", cache) == cache / "python-docs"
    with pytest.raises(ConfigError, match="neither an existing path nor a built-in corpus"):
        resolve_corpus(tmp_path / "missing", cache)
