"""The DARTS search net with merged edges (``merge_edges: true``) is the unmerged net:
the same state dict gives, in float64, the same outputs, every gradient (weights and
alphas), the same running statistics and the same MiLeNAS steps; in float32 it is close
and deterministic. ``tests/test_layout.py`` checks its float32 gradients against float64
in both layouts, at 1 and 2 threads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dfnas.search.darts_supernet import DartsSearchNet
from dfnas.search.milenas import milenas_step

CASES = {  # shape, C, channels_last
    "digits": ((1, 8, 8), 4, False),
    "cifar-channels_last": ((3, 16, 16), 4, True),
    "odd-C": ((3, 9, 9), 3, False),
}


def _pair(shape, c, channels_last, dtype):
    torch.manual_seed(0)
    plain = DartsSearchNet(shape, 10, C=c, layers=3)
    merged = DartsSearchNet(shape, 10, C=c, layers=3, merge_edges=True)
    merged.load_state_dict(plain.state_dict())
    nets = []
    for net in (plain, merged):
        net = net.to(dtype)
        nets.append(net.to(memory_format=torch.channels_last) if channels_last else net)
    return nets


def _batch(shape, channels_last, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, *shape, generator=g, dtype=dtype)
    y = torch.randint(0, 10, (6,), generator=g)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("case", list(CASES))
def test_float64_training_step_equals_unmerged(case: str) -> None:
    shape, c, cl = CASES[case]
    plain, merged = _pair(shape, c, cl, torch.float64)
    x, y = _batch(shape, cl, torch.float64)
    outs = []
    for net in (plain, merged):
        out = net(x)
        F.cross_entropy(out, y).backward()
        outs.append(out)
    assert _rel(outs[1], outs[0]) < 1e-10
    named = dict(merged.named_parameters())
    for name, p in plain.named_parameters():
        assert _rel(named[name].grad, p.grad) < 1e-10, name
    assert named["alphas_normal"].grad.abs().max() > 0  # the alphas got a gradient at all
    buffers = dict(merged.named_buffers())
    for name, b in plain.named_buffers():
        assert torch.equal(buffers[name], b), name  # the same update, channel by channel


@pytest.mark.parametrize("case", ["digits", "cifar-channels_last"])
def test_float64_eval_and_no_grad_equal_unmerged(case: str) -> None:
    shape, c, cl = CASES[case]
    plain, merged = _pair(shape, c, cl, torch.float64)
    x, _ = _batch(shape, cl, torch.float64)
    with torch.no_grad():  # training mode without autograd: batch statistics, updated
        assert _rel(merged(x), plain(x)) < 1e-10
        for a, b in zip(plain.buffers(), merged.buffers(), strict=True):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-15)
        plain.eval()
        merged.eval()
        assert _rel(merged(x), plain(x)) < 1e-10


def test_float64_milenas_steps_equal_unmerged() -> None:
    """Three MiLeNAS steps (alpha from a validation and a train pass, then the weights):
    the weights and alphas they reach are the unmerged net's."""
    shape, c, cl = CASES["digits"]
    nets = _pair(shape, c, cl, torch.float64)
    for net in nets:
        w_opt = torch.optim.SGD(net.weight_parameters(), lr=0.05, momentum=0.9)
        a_opt = torch.optim.Adam(net.arch_parameters(), lr=0.03, betas=(0.5, 0.999))
        for step in range(3):
            x, y = _batch(shape, cl, torch.float64, seed=10 + step)
            xv, yv = _batch(shape, cl, torch.float64, seed=20 + step)
            milenas_step(net, x, y, xv, yv, w_opt, a_opt, 1.0, 5.0)
    merged = dict(nets[1].named_parameters())
    for name, p in nets[0].named_parameters():
        assert _rel(merged[name].detach(), p.detach()) < 1e-9, name


def test_float32_close_to_unmerged_and_deterministic() -> None:
    shape, c, cl = CASES["cifar-channels_last"]
    x, y = _batch(shape, cl, torch.float32)
    grads = []
    for _ in range(2):
        plain, merged = _pair(shape, c, cl, torch.float32)
        for net in (plain, merged):
            F.cross_entropy(net(x), y).backward()
        grads.append([p.grad.clone() for p in merged.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))  # run after run
    for p, q in zip(plain.parameters(), merged.parameters(), strict=True):
        assert _rel(q.grad, p.grad) < 1e-3


def test_registered_with_merge_edges() -> None:
    from dfnas.models import build_model

    net = build_model("darts_search", (1, 8, 8), 10, C=2, layers=3, merge_edges=True)
    assert all(cell.merge_edges for cell in net.cells)


def test_same_flops_as_unmerged() -> None:
    """The cost meters count the same work: merging changes calls, not arithmetic."""
    from dfnas.cost.flops import flop_counter

    counts = []
    for net in _pair((1, 8, 8), 4, False, torch.float32):
        x, y = _batch((1, 8, 8), False, torch.float32)
        with flop_counter() as counter:
            F.cross_entropy(net(x), y).backward()
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
