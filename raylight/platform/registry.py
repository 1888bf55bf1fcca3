"""Algorithm registry: name -> (agent config schema, LightningModule class, kind).

Algorithms register themselves on import (``raylight.agents``, ``raylight.pretrain``); the platform
looks them up by the config's ``algo`` key and fails with the list of known names otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from raylight.platform.errors import ConfigError

AlgorithmKind = Literal["rl", "pretrain", "finetune"]


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    config_cls: type[BaseModel]
    module_cls: Any  # a LightningModule subclass; typed loosely so this module never imports Lightning
    kind: AlgorithmKind


_ALGORITHMS: dict[str, AlgorithmSpec] = {}


def register_algorithm(name: str, config_cls: type[BaseModel], kind: AlgorithmKind):
    """Class decorator: ``@register_algorithm("dqn", DQNConfig, "rl")`` on the LightningModule."""

    def wrap(module_cls: Any) -> Any:
        if name in _ALGORITHMS and _ALGORITHMS[name].module_cls is not module_cls:
            raise ValueError(f"algorithm {name!r} registered twice")
        _ALGORITHMS[name] = AlgorithmSpec(name, config_cls, module_cls, kind)
        return module_cls

    return wrap


def _import_builtin() -> None:
    import raylight.agents  # noqa: F401  (registers RL algorithms)

    try:
        import raylight.pretrain  # noqa: F401  (registers pretraining algorithms)
    except ImportError as exc:  # pragma: no cover - only when an optional piece is missing
        if "raylight.pretrain" not in str(exc):
            raise


def get_algorithm(name: str) -> AlgorithmSpec:
    _import_builtin()
    if name not in _ALGORITHMS:
        raise ConfigError(f"algo: unknown algorithm {name!r} (known: {', '.join(sorted(_ALGORITHMS))})")
    return _ALGORITHMS[name]


def algorithm_names() -> list[str]:
    _import_builtin()
    return sorted(_ALGORITHMS)
