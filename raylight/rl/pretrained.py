"""Pretrained encoders as RL torsos (``agent.encoder``): resolved before the run directory exists, loaded once on
the learner, shipped to rollout actors with the rest of the acting network's weights.

``resolve_encoder`` reads the encoder's self-described architecture into ``agent.encoder_arch`` (saved with the
run's config, so evaluation and export rebuild the torso from the run alone); the network constructors then check
the env's observations against it. ``load_pretrained_encoder`` copies the pretrained weights into every
``PretrainedTorso`` of a learner (online and target networks, actor and critic torsos alike).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from raylight.core.errors import CheckpointError, ConfigError
from raylight.rl.networks import PretrainedTorso


def resolve_encoder(agent: Any) -> None:
    """Fill ``agent.encoder_arch`` from ``agent.encoder`` (a one-line ConfigError when the file is unusable)."""
    if getattr(agent, "encoder", None) is None:
        return
    from raylight.models.encoder_io import read_encoder_source

    try:
        source = read_encoder_source(agent.encoder)
    except CheckpointError as exc:
        raise ConfigError(f"agent.encoder: {exc}") from None
    agent.encoder_arch = source.arch


def load_pretrained_encoder(module: nn.Module, encoder: str) -> int:
    """Load ``encoder``'s weights into every pretrained torso of ``module``; returns how many torsos were loaded."""
    from raylight.models.encoder_io import fit_problem, read_encoder_source

    source = read_encoder_source(encoder)
    torsos = [m for m in module.modules() if isinstance(m, PretrainedTorso)]
    for torso in torsos:
        problem = fit_problem(torso.encoder.state_dict(), source.state)
        if problem is not None:
            raise CheckpointError(f"{source.path}: encoder does not fit: {problem}")
        torso.encoder.load_state_dict(source.state)
    return len(torsos)
