"""Algorithm registry: name -> (agent config schema, LightningModule class, the kind's ``Task``).

The core never imports a domain: algorithms register themselves when their package is imported,
and the packages to import are found through the ``raylight.plugins`` entry-point group
(``pyproject.toml`` names ``raylight.rl.agents`` and ``raylight.ssl.methods``; a third-party package can
add its own algorithms the same way).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

import pytorch_lightning as pl
from pydantic import BaseModel

from raylight.core.errors import ConfigError

if TYPE_CHECKING:
    from raylight.core.task import Task

PLUGIN_GROUP = "raylight.plugins"


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    config_cls: type[BaseModel]
    module_cls: type[pl.LightningModule]
    task: Task

    @property
    def kind(self) -> str:
        return self.task.kind


_ALGORITHMS: dict[str, AlgorithmSpec] = {}
_plugins_loaded = False


def register_algorithm(name: str, config_cls: type[BaseModel], task: Task):
    """Class decorator: ``@register_algorithm("dqn", DQNConfig, RL_TASK)`` on the LightningModule."""

    def wrap(module_cls: type[pl.LightningModule]) -> type[pl.LightningModule]:
        if name in _ALGORITHMS and _ALGORITHMS[name].module_cls.__qualname__ != module_cls.__qualname__:
            raise ValueError(f"algorithm {name!r} registered twice")
        _ALGORITHMS[name] = AlgorithmSpec(name, config_cls, module_cls, task)
        return module_cls

    return wrap


def load_plugins() -> None:
    """Import every package named in the ``raylight.plugins`` entry points (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    eps = entry_points(group=PLUGIN_GROUP)
    if not eps:
        raise ConfigError("no raylight algorithms are installed: install the project (pip install -e .) so its entry points exist")
    for ep in eps:
        importlib.import_module(ep.value)
    _plugins_loaded = True


def get_algorithm(name: str) -> AlgorithmSpec:
    load_plugins()
    if name not in _ALGORITHMS:
        raise ConfigError(f"algo: unknown algorithm {name!r} (known: {', '.join(sorted(_ALGORITHMS))})")
    return _ALGORITHMS[name]


def algorithm_names() -> list[str]:
    load_plugins()
    return sorted(_ALGORITHMS)
