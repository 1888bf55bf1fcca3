"""The fused Adam the RL learners use: taken where torch has the kernel, and the same update as torch's default."""

from __future__ import annotations

import torch

from raylight.core.optim import adam, fusable


def test_fused_where_the_parameters_allow_it() -> None:
    net = torch.nn.Linear(4, 3)
    assert fusable(list(net.parameters()))
    assert fusable([{"params": list(net.parameters()), "lr": 1e-3}])
    assert adam(net.parameters(), lr=1e-3).defaults["fused"] is True
    assert not fusable([])
    assert not fusable([torch.nn.Parameter(torch.zeros(2, dtype=torch.float32, device="meta"))])


def test_fused_adam_takes_the_same_steps_as_the_default() -> None:
    torch.manual_seed(0)
    fused_net, plain_net = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    plain_net.load_state_dict(fused_net.state_dict())
    fused, plain = adam(fused_net.parameters(), lr=1e-2, eps=1e-5), torch.optim.Adam(plain_net.parameters(), lr=1e-2, eps=1e-5)
    for step in range(5):
        x = torch.randn(16, 6, generator=torch.Generator().manual_seed(step))
        for net, opt in ((fused_net, fused), (plain_net, plain)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(fused_net.parameters(), plain_net.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
