"""SIGTERM ends a run exactly like Ctrl-C: what ``timeout``, Slurm preemption, Kubernetes and systemd send.

Python turns SIGINT into ``KeyboardInterrupt``; ``install`` makes SIGTERM raise the same exception in the
main thread (after noting which signal came), so one code path writes the final checkpoint and a
``summary.json`` marked interrupted that names the signal, and the process exits 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM). ``ray.init`` installs its own SIGTERM handler in the driver (exit 15,
or a C++ stack dump): ``core.cluster`` calls ``install`` again after every ``ray.init``.

A signal that arrives while an update is running (``deferring``: from a training step's start to its end) is
held until the step ends, so the interrupt checkpoint sits on an update boundary and a resumed run repeats no
half-done update (DQN interrupted mid-block used to resume short of 106 gradient updates). A second signal
interrupts at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_received: int | None = None
_installed = False


_deferring = False
_pending: int | None = None


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _received, _pending
    if _deferring and _pending is None:  # mid-update: interrupt when the step ends (``end_step``)
        _pending = _received = signum
        return
    if _received is not None and _pending is None and signum == signal.SIGTERM:
        return  # a repeated SIGTERM while the first is handled: let the final save finish
    _received = signum
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """Make SIGTERM interrupt like Ctrl-C, and both wait for the running update (main thread only; a no-op
    elsewhere, as ``signal.signal`` requires)."""
    global _installed
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when the shell made us ignore it
        signal.signal(signal.SIGINT, _on_signal)
    _installed = True


def begin_step() -> None:
    """An update starts: a signal now is held until ``end_step``."""
    global _deferring
    _deferring = True


def end_step() -> None:
    """The update is done: raise the interrupt a signal asked for meanwhile."""
    global _deferring, _pending
    _deferring = False
    if _pending is not None:
        name = signal.Signals(_pending).name
        _pending = None
        raise KeyboardInterrupt(name)


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
    global _received, _pending, _deferring
    _received = _pending = None
    _deferring = False


def reset_step() -> None:
    """A step ended by an exception: stop holding signals (the pending one, if any, is what is being handled)."""
    global _deferring, _pending
    _deferring = False
    _pending = None
