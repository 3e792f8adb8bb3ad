"""Models by name::

from dfnas.models import build_model, MODELS
net = build_model("resnet20", in_shape=(3, 32, 32), num_classes=10)
"""

from dfnas.models import cnn, darts, mobilenet, resnet, shufflenet  # noqa: F401  (registration)
from dfnas.models.registry import MODELS, build_from_spec, build_model, model_spec

__all__ = ["MODELS", "build_model", "build_from_spec", "model_spec"]
