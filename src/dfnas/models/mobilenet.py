"""A small MobileNetV2 (Sandler et al. 2018) for 8-32 px inputs: inverted residual
blocks, the stem at stride 1, and strides only while the feature map is larger than 2x2."""

from __future__ import annotations

from torch import Tensor, nn

from dfnas.models.norm import BatchNorm2d
from dfnas.models.registry import MODELS

# (expansion t, channels c, blocks n, stride s), the ImageNet table cut to small inputs
SMALL_SETTING = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2), (6, 96, 1, 1)]


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [
                nn.Conv2d(cin, hidden, 1, bias=False),
                BatchNorm2d(hidden),
                nn.ReLU6(True),
            ]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            BatchNorm2d(hidden),
            nn.ReLU6(True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    def __init__(
        self, in_shape: tuple[int, int, int], num_classes: int, width: float, last: int
    ) -> None:
        super().__init__()
        c_in, size, _ = in_shape
        stem = max(8, int(32 * width))
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, stem, 3, 1, 1, bias=False),
            BatchNorm2d(stem),
            nn.ReLU6(True),
        ]
        cin = stem
        for t, c, n, s in SMALL_SETTING:
            cout = max(8, int(c * width))
            for i in range(n):
                stride = s if i == 0 and size > 2 else 1
                size = (size + stride - 1) // stride
                layers.append(InvertedResidual(cin, cout, stride, t))
                cin = cout
        layers += [nn.Conv2d(cin, last, 1, bias=False), BatchNorm2d(last), nn.ReLU6(True)]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@MODELS.register("mobilenetv2")
def mobilenetv2(
    in_shape: tuple[int, int, int], num_classes: int, width: float = 1.0, last: int = 512
) -> nn.Module:
    return MobileNetV2(in_shape, num_classes, width=width, last=last)
