"""ResNet-20 for CIFAR (He et al. 2016, section 4.2): 3 stages of n basic blocks with
16/32/64 channels; depth = 6n + 2. Projection shortcuts (1x1 conv + BN) where the shape
changes ("option B")."""

from __future__ import annotations

from torch import Tensor, nn

from dfnas.models.norm import BatchNorm2d
from dfnas.models.registry import MODELS


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, depth: int, width: int):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        layers: list[nn.Module] = [
            nn.Conv2d(in_shape[0], width, 3, 1, 1, bias=False),
            BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        cin = width
        for stage, mult in enumerate((1, 2, 4)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(BasicBlock(cin, width * mult, stride))
                cin = width * mult
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


@MODELS.register("resnet20")
def resnet20(
    in_shape: tuple[int, int, int], num_classes: int, depth: int = 20, width: int = 16
) -> nn.Module:
    return CifarResNet(in_shape, num_classes, depth=depth, width=width)
