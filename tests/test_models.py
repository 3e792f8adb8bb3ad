"""Every registered model on every input size, and rebuilt from its model.json."""

from __future__ import annotations

import pytest
import torch

from dfnas.errors import ConfigError
from dfnas.models import MODELS, build_from_spec, build_model, model_spec

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_backward(name, shape):
    model = build_model(name, shape, 7)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)
    out.sum().backward()


@pytest.mark.parametrize("name", MODELS.names())
def test_rebuilt_from_spec_with_weights_only_load(tmp_path, name):
    model = build_model(name, (3, 32, 32), 10)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    again = build_from_spec(model_spec(name, (3, 32, 32), 10))
    again.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    model.eval()
    again.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), again(x))


def test_bad_model_args_are_config_errors():
    with pytest.raises(ConfigError, match="model_args.colour: not an argument of model 'cnn'"):
        build_model("cnn", (1, 8, 8), 10, colour=1)
    with pytest.raises(ConfigError, match="cannot map"):
        build_model("shufflenetv2", (1, 8, 8), 10, stem=16, stages=[[1, 16]])


def test_random_architecture_is_seeded():
    a = build_model("shufflenetv2", (3, 32, 32), 10, ops="random", arch_seed=1).ops
    assert a == build_model("shufflenetv2", (3, 32, 32), 10, ops="random", arch_seed=1).ops
    assert a != build_model("shufflenetv2", (3, 32, 32), 10, ops="random", arch_seed=2).ops


def test_random_networks_drawn_under_a_mac_budget():
    """``max_macs`` (the random control of a device budget): every network fits, the same
    seed gives the same network, a first draw that fits is ``ops: random``'s own, and a
    budget nothing fits is refused in one line."""
    from dfnas.cost import forward_flops
    from dfnas.models.shufflenet import random_within

    shape = (3, 16, 16)
    free = [build_model("shufflenetv2", shape, 10, ops="random", arch_seed=a) for a in range(4)]
    budget = sorted(forward_flops(n, shape) // 2 for n in free)[1]  # between the draws
    for a, unbudgeted in enumerate(free):
        net = build_model("shufflenetv2", shape, 10, ops="random", arch_seed=a, max_macs=budget)
        again = build_model("shufflenetv2", shape, 10, ops="random", arch_seed=a, max_macs=budget)
        assert forward_flops(net, shape) // 2 <= budget and net.ops == again.ops
        if forward_flops(unbudgeted, shape) // 2 <= budget:
            assert net.ops == unbudgeted.ops
        else:
            assert net.ops != unbudgeted.ops
    with pytest.raises(ValueError, match=r"^max_macs: no random network of this space within 10 "):
        random_within(shape, 10, 16, [[2, 24], [2, 48], [4, 96]], 256, 0, 10, draws=3)
