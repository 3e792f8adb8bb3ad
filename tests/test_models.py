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
