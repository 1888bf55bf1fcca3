"""Text corpora: files to documents (lists of segments), shards as byte ranges of files.

A shard is a list of ``FileRange``s. Plain text and JSON Lines files can be cut at any byte:
as in Hadoop's line reader, a line belongs to the range in which its first byte lies, so a reader
skips the partial line at its start and reads past its end to finish its last line; ranges that
cover a file therefore read each line exactly once. Parquet files are cut between row groups;
compressed files and JSON arrays are never cut (their one "record" starts at byte 0).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import heapq
import io
import json
import os
import platform
import re
import shutil
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from raylight.core.errors import ConfigError

TEXT_SUFFIXES = (".txt", ".jsonl", ".json", ".parquet", ".txt.gz", ".jsonl.gz")
_UNSPLITTABLE = (".txt.gz", ".jsonl.gz")


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in sorted(TEXT_SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def list_corpus_files(path: str | Path) -> list[Path]:
    """``path`` itself, or the corpus files under it (recursive, sorted, hidden files and folders skipped)."""
    p = Path(path).expanduser()
    if p.is_file():
        if _suffix(p) is None:
            raise ConfigError(f"{p}: not a corpus file (expected one of {', '.join(TEXT_SUFFIXES)})")
        return [p]
    if not p.is_dir():
        raise ConfigError(f"corpus path {p} does not exist")
    files = sorted(f for f in p.rglob("*") if f.is_file() and _suffix(f)
                   and not any(part.startswith(".") for part in f.relative_to(p).parts))
    if not files:
        raise ConfigError(f"no corpus files under {p} (looked for {', '.join(TEXT_SUFFIXES)})")
    return files


def check_text_files(files: list[Path], where: Path) -> None:
    """Plain-text corpus files are UTF-8 text, and the corpus holds some: refused up front, naming the file,
    before any run directory exists. Binary and latin-1 files used to train silently (decoded with
    ``errors='replace'``); an empty or whitespace-only corpus failed only after the run had started."""
    texts = [f for f in files if _suffix(f) in (".txt", ".txt.gz")]
    if texts and not any([_check_text_file(f, f.stat().st_size, f.stat().st_mtime_ns) for f in texts]):
        raise ConfigError(f"{where}: the corpus holds no text (its files are empty or whitespace only)")


@lru_cache(maxsize=4096)
def _check_text_file(path: Path, size: int, mtime_ns: int) -> bool:
    """Whether the file holds any non-whitespace text; ``ConfigError`` for binary or non-UTF-8 bytes
    (checked once per file version: ``size`` and ``mtime_ns`` key the cache)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    has_text, offset = False, 0
    with _open(path) as f:
        while chunk := f.read(1 << 20):
            if b"\x00" in chunk:
                raise ConfigError(f"{path}: binary data (a NUL byte at byte {offset + chunk.index(0)}), not a text corpus")
            try:
                has_text = bool(decoder.decode(chunk).strip()) or has_text
            except UnicodeDecodeError as e:
                raise ConfigError(f"{path}: not valid UTF-8 at byte {offset + e.start} (text corpora are read as UTF-8; "
                                  "convert it first, e.g. iconv -f latin1 -t utf-8)") from None
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8 (it ends inside a character)") from None
    return has_text


@dataclass(frozen=True)
class FileRange:
    """Part of one file: bytes [start, stop) (row groups [start, stop) for parquet)."""

    path: str
    start: int
    stop: int


def _is_json_array(path: Path) -> bool:
    """A ``.json`` file is either one JSON array of records or JSON Lines (first non-blank byte decides)."""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            head = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")  # whitespace and a UTF-8 byte-order mark
            if head:
                return head[:1] == b"["
    return False


def _parquet_file(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ConfigError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from e
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise ConfigError(f"{path}: not a readable parquet file ({e})") from e


def _cut_points(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(byte offsets, native positions) where ``path`` may be cut; None: at any byte (native = byte)."""
    size = path.stat().st_size
    suffix = _suffix(path)
    if suffix == ".parquet":
        meta = _parquet_file(path).metadata
        cum = np.cumsum([0] + [meta.row_group(g).total_byte_size for g in range(meta.num_row_groups)], dtype=np.float64)
        scaled = cum * size / cum[-1] if cum[-1] > 0 else np.linspace(0, size, len(cum))
        return scaled, np.arange(len(cum))
    if suffix in _UNSPLITTABLE or (suffix == ".json" and _is_json_array(path)):
        return np.array([0.0, size]), np.array([0, size])
    return None


def _whole(path: Path) -> FileRange:
    if _suffix(path) == ".parquet":
        return FileRange(str(path), 0, _parquet_file(path).metadata.num_row_groups)
    return FileRange(str(path), 0, path.stat().st_size)


def plan_shards(files: list[Path], num_shards: int) -> list[list[FileRange]]:
    """Exactly ``num_shards`` disjoint shards covering every byte of ``files``, balanced by bytes.

    With at least as many files as shards, whole files go to the lightest shard, largest first.
    Otherwise the files, laid end to end, are cut at equal byte offsets (text at any byte, parquet
    at the nearest row-group boundary, compressed files and JSON arrays not at all), so a shard can
    be empty when one unsplittable file outweighs several shards. Empty files are left out.
    """
    if num_shards < 1:
        raise ConfigError(f"num_shards must be at least 1, got {num_shards}")
    try:
        sizes = {Path(f): Path(f).stat().st_size for f in files}
    except OSError as e:
        raise ConfigError(f"corpus file unreadable: {e}") from e
    files = [f for f, size in sizes.items() if size > 0]
    shards: list[list[FileRange]] = [[] for _ in range(num_shards)]
    if len(files) >= num_shards:
        heap = [(0, s) for s in range(num_shards)]
        for f in sorted(files, key=lambda f: (-sizes[f], str(f))):
            total, s = heapq.heappop(heap)
            shards[s].append(_whole(f))
            heapq.heappush(heap, (total + sizes[f], s))
        return [sorted(shard, key=lambda r: r.path) for shard in shards]
    total = sum(sizes[f] for f in files)
    bounds = np.round(np.arange(num_shards + 1) * total / num_shards)  # (K + 1,) global byte offsets
    offset = 0
    for f in files:
        local = np.clip(bounds - offset, 0, sizes[f])  # (K + 1,) nondecreasing, 0 ... size
        points = _cut_points(f)
        if points is None:
            native = local.astype(np.int64)
        else:
            at, native_at = points
            right = np.clip(np.searchsorted(at, local), 1, len(at) - 1)  # snap to the nearest allowed cut
            nearest = np.where(local - at[right - 1] <= at[right] - local, right - 1, right)
            native = native_at[nearest]
        for s in range(num_shards):
            if native[s] < native[s + 1]:
                shards[s].append(FileRange(str(f), int(native[s]), int(native[s + 1])))
        offset += sizes[f]
    return shards


def _open(path: Path) -> gzip.GzipFile | io.BufferedReader:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _lines(path: Path, start: int, stop: float) -> Iterator[tuple[int, bytes]]:
    """(offset, line) of each line whose first byte lies in [start, stop)."""
    with _open(path) as f:
        pos = 0
        if start > 0:
            f.seek(start - 1)
            pos = start - 1 + len(f.readline())  # through the first newline at or after start - 1
        while pos < stop:
            line = f.readline()
            if not line:
                return
            yield pos, line
            pos += len(line)


def _line_number(path: Path, offset: int) -> int:
    """1-based number of the line starting at ``offset`` (only counted when reporting an error)."""
    count, left = 1, offset
    with _open(path) as f:
        while left > 0 and (chunk := f.read(min(left, 1 << 20))):
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count


def _segments(text: str) -> list[str]:
    return [s for line in text.splitlines() if (s := line.strip())]


def _record_doc(record: Any, text_field: str) -> list[str]:
    """Segments of one JSON record's ``text_field`` (null = no document); ValueError says what is wrong."""
    if not isinstance(record, dict) or text_field not in record:
        raise ValueError(f"record has no {text_field!r} field")
    text = record[text_field]
    if text is None:
        return []
    if not isinstance(text, str):
        raise ValueError(f"field {text_field!r} is {type(text).__name__}, not text")
    return _segments(text)


def _why(e: ValueError) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON ({e.msg})"
    return "not valid UTF-8" if isinstance(e, UnicodeDecodeError) else str(e)


def _text_docs(lines: Iterator[tuple[int, bytes]]) -> Iterator[list[str]]:
    """Blank-line-separated blocks; each non-empty line is a segment."""
    doc: list[str] = []
    for pos, raw in lines:
        line = raw.decode("utf-8", errors="replace")
        line = (line.removeprefix("\ufeff") if pos == 0 else line).strip()
        if line:
            doc.append(line)
        elif doc:
            yield doc
            doc = []
    if doc:
        yield doc


def _jsonl_docs(path: Path, lines: Iterator[tuple[int, bytes]], text_field: str) -> Iterator[list[str]]:
    """One document per JSON object; its text's non-empty lines are the segments."""
    for pos, raw in lines:
        if not raw.strip():
            continue
        try:
            doc = _record_doc(json.loads(raw), text_field)
        except ValueError as e:
            raise ConfigError(f"{path}:{_line_number(path, pos)}: {_why(e)}") from e
        if doc:
            yield doc


def _json_array_docs(path: Path, text_field: str) -> Iterator[list[str]]:
    try:
        records = json.loads(path.read_bytes())
    except ValueError as e:
        raise ConfigError(f"{path}: {_why(e)}") from e
    if not isinstance(records, list):
        raise ConfigError(f"{path}: expected a JSON array of records")
    for i, record in enumerate(records):
        try:
            doc = _record_doc(record, text_field)
        except ValueError as e:
            raise ConfigError(f"{path}: record {i}: {e}") from e
        if doc:
            yield doc


def _parquet_docs(path: Path, start: int, stop: int, text_field: str) -> Iterator[list[str]]:
    pf = _parquet_file(path)
    if text_field not in pf.schema_arrow.names:
        raise ConfigError(f"{path}: no column {text_field!r} (columns: {', '.join(pf.schema_arrow.names)})")
    for group in range(start, min(stop, pf.metadata.num_row_groups)):
        for text in pf.read_row_group(group, columns=[text_field]).column(0).to_pylist():
            if text is not None and not isinstance(text, str):
                raise ConfigError(f"{path}: column {text_field!r} holds {type(text).__name__}, not text")
            if text and (doc := _segments(text)):
                yield doc


def read_documents(r: FileRange, text_field: str = "text") -> Iterator[list[str]]:
    """The documents of ``r``, each a list of segments (non-empty lines, stripped).

    Plain text: a document per blank-line-separated block. A block that straddles two ranges is
    read as two documents (each range sees only its own lines); that only shortens a few
    documents, and byte ranges need no index of the file. JSON Lines / JSON arrays: a document
    per record's ``text_field``. Parquet: a document per row of column ``text_field``.
    """
    path = Path(r.path)
    suffix = _suffix(path)
    if suffix == ".parquet":
        yield from _parquet_docs(path, r.start, r.stop, text_field)
    elif suffix == ".json" and _is_json_array(path):
        if r.start == 0:
            yield from _json_array_docs(path, text_field)
    else:
        stop = float("inf") if suffix in _UNSPLITTABLE else r.stop
        lines = _lines(path, r.start, stop) if suffix not in _UNSPLITTABLE or r.start == 0 else iter(())
        if suffix in (".txt", ".txt.gz"):
            yield from _text_docs(lines)
        else:
            yield from _jsonl_docs(path, lines, text_field)


# Built-in English data: CPython's own documentation, offline and the same on every machine with the same Python.

BUILTIN_CORPORA = ("python-docs",)
BUILTIN_TASKS = ("python-docstrings",)
TASK_PACKAGES = ("asyncio", "email", "importlib", "logging", "xml", "unittest", "multiprocessing", "http")
_BUILTIN_VERSION = "1"  # bump when the extraction below changes: caches with another tag are rebuilt
_SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "tkinter", "turtledemo", "lib2to3", "__pycache__"}
_MIN_DOCSTRING = 40  # characters: shorter docstrings ("Return self.") teach little
_TEST_PERCENT = 20
_CORPUS_FILES = 8
_RULE = re.compile(r"[*=\-~^#+_.:`'\"]{3,}")  # reST title underlines in the pydoc topics


@dataclass(frozen=True)
class _Docstring:
    relpath: str  # posix path under the stdlib folder, e.g. "email/message.py"
    qualname: str  # "<module>", "Class", "Class.method", ...
    text: str


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _tag(name: str) -> str:
    """Cache version: the extraction's version and the Python whose files it reads."""
    return f"{name} v{_BUILTIN_VERSION} python {platform.python_version()}"


def _walk_docstrings(node: ast.AST, prefix: str) -> Iterator[tuple[str, str]]:
    """(qualified name, docstring) of the classes and functions under ``node``, in source order."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if doc := ast.get_docstring(child):
                yield prefix + child.name, doc
            yield from _walk_docstrings(child, f"{prefix}{child.name}.")
        elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):  # if/try/with blocks
            yield from _walk_docstrings(child, prefix)


@lru_cache(maxsize=2)
def _docstrings(root: Path) -> tuple[_Docstring, ...]:
    """Docstrings over ``_MIN_DOCSTRING`` chars of the stdlib's modules, classes and functions, parsed with
    ``ast`` (never imported: importing runs code and some modules need a GUI or another OS)."""
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("config-"))
        files += [Path(folder) / n for n in sorted(names) if n.endswith(".py")]
    out = []
    for f in sorted(files):
        try:
            tree = ast.parse(f.read_bytes())
        except (SyntaxError, ValueError, OSError):  # a file for another Python version: nothing to learn
            continue
        relpath = f.relative_to(root).as_posix()
        module_doc = ast.get_docstring(tree)
        found = ([("<module>", module_doc)] if module_doc else []) + list(_walk_docstrings(tree, ""))
        out += [_Docstring(relpath, q, d.strip()) for q, d in found if len(d.strip()) > _MIN_DOCSTRING]
    return tuple(out)


def _is_test(relpath: str, qualname: str) -> bool:
    """Stable 80/20 split by a hash of the docstring's location (Python's hash() changes per process)."""
    digest = hashlib.sha256(f"{relpath}::{qualname}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < _TEST_PERCENT


def _task_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, test) rows of the docstring -> package task; a text seen twice is kept once (at its first
    location, which decides its split), and dropped if it appears in two packages (no single label)."""
    first: dict[str, _Docstring] = {}
    labels: dict[str, set[str]] = {}
    for d in _docstrings(_stdlib_root()):
        package = d.relpath.split("/")[0]
        if package in TASK_PACKAGES:
            first.setdefault(d.text, d)
            labels.setdefault(d.text, set()).add(package)
    train: list[dict[str, str]] = []
    test: list[dict[str, str]] = []
    for text, d in first.items():
        if len(labels[text]) == 1:
            row = {"text": text, "label": d.relpath.split("/")[0], "source": f"{d.relpath}:{d.qualname}"}
            (test if _is_test(d.relpath, d.qualname) else train).append(row)
    return train, test


def _document(text: str) -> str:
    """One document of the corpus files: its non-empty lines, stripped; blank lines only between documents."""
    return "\n".join(s for line in text.splitlines() if (s := line.strip()) and not _RULE.fullmatch(s))


def _write_corpus(folder: Path) -> None:
    try:
        from pydoc_data.topics import topics
    except ImportError as e:
        raise ConfigError("this Python has no pydoc_data (its documentation topics); use a corpus of files") from e
    seen = {_document(row["text"]) for row in _task_rows()[1]}  # held out: compared as written, not as parsed
    docs = []
    for text in [topics[k] for k in sorted(topics)] + [d.text for d in _docstrings(_stdlib_root())]:
        doc = _document(text)
        if doc and doc not in seen:  # also drops repeated docstrings
            seen.add(doc)
            docs.append(doc)
    sizes = np.cumsum([len(d) for d in docs])
    part = np.minimum((sizes - 1) * _CORPUS_FILES // sizes[-1], _CORPUS_FILES - 1)  # contiguous, ~equal chars
    for k in range(_CORPUS_FILES):
        body = "\n\n".join(d for d, p in zip(docs, part, strict=True) if p == k)
        (folder / f"python-docs-{k:02d}.txt").write_text(body + "\n", encoding="utf-8")


def _write_task(folder: Path) -> None:
    for split, rows in zip(("train", "test"), _task_rows(), strict=True):
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _version(folder: Path) -> str | None:
    marker = folder / "VERSION"
    return marker.read_text().strip() if marker.is_file() else None


def _build_once(folder: Path, name: str, write: Callable[[Path], None]) -> Path:
    """``folder`` holding ``name``'s files, written into a temporary folder and renamed into place, so a
    reader never sees half a dataset; reused while its VERSION tag matches, rebuilt when it differs."""
    tag = _tag(name)
    if _version(folder) == tag:
        return folder
    if folder.exists() and _version(folder) is None:
        raise ConfigError(f"{folder} exists but is not a built-in dataset of raylight; move it or use another cache_dir")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        (tmp / "VERSION").write_text(tag + "\n")
        if _version(folder) == tag:  # another process finished first: keep its copy (it may be read already)
            return folder
        if folder.exists():  # another version: move it aside (a folder cannot be renamed over another)
            stale = Path(tempfile.mkdtemp(prefix=f".{folder.name}.stale.", dir=folder.parent))
            os.replace(folder, stale / folder.name)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError:
        if _version(folder) != tag:  # not a concurrent build that won the rename
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def builtin_corpus(name: str, cache_dir: Path) -> Path:
    """Folder of ``.txt`` files for a built-in corpus, built once under ``cache_dir``.

    "python-docs": CPython's documentation topics (``pydoc_data``) and the docstrings of its
    standard library, one document per topic or docstring, without the held-out docstrings of the
    "python-docstrings" task (so a probe on that task never tests on pretraining text).
    """
    if name not in BUILTIN_CORPORA:
        raise ConfigError(f"unknown built-in corpus {name!r} (built-in: {', '.join(BUILTIN_CORPORA)})")
    return _build_once(Path(cache_dir).expanduser() / name, name, _write_corpus)


def builtin_task(name: str, cache_dir: Path) -> tuple[Path, Path]:
    """(train.jsonl, test.jsonl) of a built-in labelled task, built once under ``cache_dir``.

    "python-docstrings": {"text": docstring, "label": top-level package, "source": "path:qualname"}
    for the stdlib packages in ``TASK_PACKAGES``; 80/20 split by a hash of the docstring's location.
    """
    if name not in BUILTIN_TASKS:
        raise ConfigError(f"unknown built-in task {name!r} (built-in: {', '.join(BUILTIN_TASKS)})")
    folder = _build_once(Path(cache_dir).expanduser() / name, name, _write_task)
    return folder / "train.jsonl", folder / "test.jsonl"


def resolve_corpus(value: str | Path, cache_dir: Path) -> Path:
    """The path of a built-in corpus (built if needed), or the user's corpus path, which must exist."""
    if str(value) in BUILTIN_CORPORA:
        return builtin_corpus(str(value), cache_dir)
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError(f"corpus {str(value)!r} is neither an existing path nor a built-in corpus ({', '.join(BUILTIN_CORPORA)})")
    return path
