"""SIGTERM ends a run exactly like Ctrl-C: what ``timeout``, Slurm preemption, Kubernetes and systemd send.

Python turns SIGINT into ``KeyboardInterrupt``; ``install`` makes SIGTERM raise the same exception in the
main thread (after noting which signal came), so one code path writes the final checkpoint and a
``summary.json`` marked interrupted that names the signal, and the process exits 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM). ``ray.init`` installs its own SIGTERM handler in the driver (exit 15,
or a C++ stack dump): ``core.cluster`` calls ``install`` again after every ``ray.init``.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_received: int | None = None
_installed = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received is not None:  # a second SIGTERM while the first is handled: let the final save finish
        return
    _received = signum
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """Make SIGTERM interrupt like Ctrl-C (main thread only; a no-op elsewhere, as ``signal.signal`` requires)."""
    global _installed
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _on_sigterm)
    _installed = True


def reinstall() -> None:
    """After ``ray.init``: restore our handler if ``install`` had been called (Ray replaced it)."""
    if _installed:
        install()


def received() -> str:
    """The name of the signal that interrupted this process: SIGTERM when ours was caught, else SIGINT (Ctrl-C)."""
    return signal.Signals(_received).name if _received is not None else "SIGINT"


def exit_code() -> int:
    """The shell's convention for a process ended by a signal: 128 + its number (130 SIGINT, 143 SIGTERM)."""
    return 128 + (_received if _received is not None else signal.SIGINT)


def reset() -> None:
    """Forget a caught signal (tests run several interrupted runs in one process)."""
    global _received
    _received = None
