"""Known answers for the numerical guard: stop raises before the step, skip leaves weights and optimizer state untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from raylight.core.errors import NonFiniteError
from raylight.core.numerics import NumericsGuard


def _step(guard: NumericsGuard, net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> bool:
    loss = net(x).sum()
    guard.check_loss(loss, "in test at step 1")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if not guard.gradients_ok(net.parameters(), "in test at step 1"):
        return False
    opt.step()
    return True


def test_stop_mode_names_the_loss_and_where() -> None:
    guard = NumericsGuard("stop")
    with pytest.raises(NonFiniteError, match=r"numerics: loss is nan in test at step 1"):
        guard.check_loss(torch.tensor(float("nan")), "in test at step 1")
    guard.check_loss(torch.tensor(1.0), "x")  # finite: nothing happens


def test_stop_mode_refuses_a_non_finite_gradient_before_the_step() -> None:
    net = nn.Linear(2, 1)
    before = [p.detach().clone() for p in net.parameters()]
    net.weight.register_hook(lambda g: g * float("inf"))  # finite loss, infinite gradient
    with pytest.raises(NonFiniteError, match="non-finite gradient in test at step 1"):
        _step(NumericsGuard("stop"), net, torch.optim.Adam(net.parameters()), torch.ones(1, 2))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_skip_mode_drops_the_update_and_counts_it() -> None:
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    guard = NumericsGuard("skip")
    assert _step(guard, net, opt, torch.ones(1, 2))
    weights = [p.detach().clone() for p in net.parameters()]
    state = {k: v["exp_avg"].clone() for k, v in zip(range(2), opt.state.values(), strict=True)}
    assert not _step(guard, net, opt, torch.tensor([[float("nan"), 1.0]]))
    assert all(torch.equal(a, b) for a, b in zip(weights, net.parameters(), strict=True)), "a skipped update moved a weight"
    assert all(torch.equal(state[k], v["exp_avg"]) for k, v in zip(range(2), opt.state.values(), strict=True))
    assert guard.skipped_updates == 1 and guard.metrics()["numerics/skipped_updates"] == 1.0
    assert _step(guard, net, opt, torch.ones(1, 2)), "training goes on after a skipped update"
