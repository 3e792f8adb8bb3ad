"""The project's own ops that stand in for torch's (tests/test_layout.py checks whole
networks): custom autograd nodes pass gradcheck in float64, and each replacement computes
what the op it replaces computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dfnas.models.darts_ops import FactorizedReduce
from dfnas.models.mixed_norm import weighted_norm_sum
from dfnas.models.norm import BatchNorm2d

LAYOUTS = [torch.contiguous_format, torch.channels_last]


@pytest.mark.parametrize("fmt", LAYOUTS)
def test_fused_mixed_edge_norm_passes_gradcheck(fmt):
    torch.manual_seed(0)
    norms = [nn.BatchNorm2d(3, affine=False).double() for _ in range(4)]
    weights = torch.softmax(torch.randn(4, dtype=torch.double), 0).requires_grad_()
    zs = [
        (torch.randn(4, 3, 5, 5, dtype=torch.double) * (i + 1) + i)
        .contiguous(memory_format=fmt)
        .requires_grad_()
        for i in range(4)
    ]
    assert torch.autograd.gradcheck(
        lambda w, *z: weighted_norm_sum(w, z, norms), (weights, *zs), eps=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("fmt", LAYOUTS)
@pytest.mark.parametrize("size", [8, 7])
def test_factorized_reduce_is_darts_strided_convs(fmt, size):
    """The subsample-then-conv form equals DARTS's two stride-2 1x1 convs, odd sizes too."""
    torch.manual_seed(0)
    op = FactorizedReduce(4, 6, affine=True).double().to(memory_format=fmt)
    x = torch.randn(3, 4, size, size, dtype=torch.double).contiguous(memory_format=fmt)
    relu = F.relu(x)
    shifted = F.pad(relu[:, :, 1:, 1:], (0, 1, 0, 1))
    darts = op.bn(torch.cat([F.conv2d(relu, op.conv1.weight, stride=2),
                             F.conv2d(shifted, op.conv2.weight, stride=2)], 1))  # fmt: skip
    torch.testing.assert_close(op(x), darts, rtol=0, atol=1e-12)


def test_norm_in_channels_last_is_the_nchw_kernel():
    """Output, input gradient and running statistics are the NCHW kernel's, bit for bit,
    and the output keeps the input's layout."""
    torch.manual_seed(0)
    x = torch.randn(8, 5, 6, 6) * 3 + 10
    g = torch.randn_like(x)
    plain, ours = nn.BatchNorm2d(5), BatchNorm2d(5)
    ours.load_state_dict(plain.state_dict())
    xp = x.clone().requires_grad_()
    yp = plain(xp)
    yp.backward(g)
    xc = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    yc = ours(xc)
    yc.backward(g.contiguous(memory_format=torch.channels_last))
    assert yc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(yc, yp) and torch.equal(xc.grad, xp.grad)
    assert torch.equal(ours.running_var, plain.running_var)
    assert torch.equal(ours.weight.grad, plain.weight.grad)
