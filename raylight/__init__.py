"""raylight: distributed RL and self-supervised pretraining on Ray + PyTorch Lightning.

The Python API (``raylight.train``, ``load_policy``, ``evaluate``, ``load_encoder``, ``seeds``, ``sweep``, ...)
lives in ``raylight.api`` and is loaded on first use, so ``import raylight`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from raylight.core.errors import CheckpointError, ConfigError, RaylightError, RunFailed

__version__ = "0.1.0"

_API = ("train", "evaluate", "load_policy", "load_encoder", "load_run", "config", "seeds", "sweep", "RunResult", "StudyResult")
__all__ = [*_API, "CheckpointError", "ConfigError", "RaylightError", "RunFailed", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from raylight import api

        return getattr(api, name)
    raise AttributeError(f"module 'raylight' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
