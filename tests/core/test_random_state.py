"""The learner's random generators survive a checkpoint round trip (weights_only) and continue the same streams."""

from __future__ import annotations

import io
import random

import numpy as np
import torch

from raylight.core.random_state import RandomState, capture, restore


def _draws() -> tuple[list[float], list[float], float]:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random()


def test_captured_state_loads_with_weights_only_and_repeats_the_draws() -> None:
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    _draws()
    buf = io.BytesIO()
    torch.save(capture(), buf)
    expected = _draws()
    _draws()  # move every generator on
    restore(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert _draws() == expected


def test_the_callback_restores_at_the_first_training_step_and_only_for_one_rank() -> None:
    torch.manual_seed(2)
    saved = RandomState().state_dict()
    expected = torch.rand(2)
    callback = RandomState()
    callback.load_state_dict(saved)
    torch.rand(5)  # start-up draws between loading and the first step do not count
    callback.on_train_batch_start(None, None, None, 0)  # type: ignore[arg-type]
    assert torch.equal(torch.rand(2), expected)

    ddp = RandomState()
    ddp.world_size = 2
    assert set(ddp.state_dict()) == {"world_size"}  # rank 0's generators are not every rank's
    ddp.load_state_dict(saved)
    torch.manual_seed(3)
    ddp.on_train_batch_start(None, None, None, 0)  # type: ignore[arg-type]
    assert not torch.equal(torch.rand(2), expected)
