"""Parent-death watch for an in-process Ray.

``ray.init`` starts GCS, raylet, dashboard and agent processes under this one; ``ray.shutdown`` (or
the atexit hook) ends them. A ``kill -9`` or the OOM killer skips both: GCS and raylet notice and exit,
but the dashboard and runtime-env agents were seen living on (~210 MB, 5 open sockets) for good.
A tiny watcher process remembers this process's Ray descendants and ends them once it is gone.
It polls (``POLL_S``) because Linux's parent-death signal only reaches direct children.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

POLL_S = 0.25  # a kill -9 during ray.init's start-up must still find what had started
GRACE_S = 3.0
_started_for: int | None = None
_SESSION = re.compile(r"session_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d+_\d+")


def start_watchdog() -> None:
    """Start the watcher for this process (once per process; it follows later Ray restarts too)."""
    global _started_for
    if _started_for == os.getpid():
        return
    import ray  # psutil ships inside Ray's thirdparty_files; hand that path to the watcher

    thirdparty = os.path.join(os.path.dirname(ray.__file__), "thirdparty_files")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (thirdparty, os.environ.get("PYTHONPATH", "")) if p)}
    subprocess.Popen(
        [sys.executable, "-m", "raylight.core.watchdog", str(os.getpid())],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the terminal's process group must not end the watcher first
        close_fds=True,
    )
    _started_for = os.getpid()


def is_ray_process(cmdline: list[str]) -> bool:
    """Ray's servers, agents and workers (by their command line or ``ray::`` process title)."""
    text = " ".join(cmdline)
    return text.startswith("ray::") or f"{os.sep}ray{os.sep}" in text or "raylet" in text or "gcs_server" in text


def _sessions_of(proc: Any) -> list[str]:
    """The Ray session names (``session_<date>_<time>_<n>_<pid>``) a process's command line mentions."""
    try:
        return _SESSION.findall(" ".join(proc.cmdline()))
    except Exception:  # noqa: BLE001 - psutil.Error: the process is gone or not ours to read
        return []


def watch(parent_pid: int) -> list[Any]:
    """Block while ``parent_pid`` lives; then end the Ray processes it had and return them."""
    import psutil

    me = os.getpid()
    try:
        parent = psutil.Process(parent_pid)
    except psutil.NoSuchProcess:
        return []
    known: dict[int, psutil.Process] = {}
    sessions: set[str] = set()
    while parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE:
        try:
            current = {p.pid: p for p in parent.children(recursive=True) if p.pid != me and is_ray_process(p.cmdline())}
        except psutil.Error:
            current = None
        if current is not None:
            known = current
            sessions |= {m for p in current.values() for m in _sessions_of(p)}
        time.sleep(POLL_S)
    # Processes started between the last poll and the parent's death, or re-parented before it (agents of a
    # raylet that died first), are found by the Ray session directory in their command line.
    for proc in psutil.process_iter():
        if proc.pid != me and proc.pid not in known and sessions & set(_sessions_of(proc)):
            known[proc.pid] = proc
    alive = [p for p in known.values() if p.is_running()]  # is_running also checks the pid was not reused
    for proc in alive:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=GRACE_S)
    for proc in still:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return alive


if __name__ == "__main__":
    watch(int(sys.argv[1]))
