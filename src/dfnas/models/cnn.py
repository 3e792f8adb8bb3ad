"""The CNN of the FedAvg paper (McMahan et al. 2017, "CNN" for CIFAR).

Two 5x5 conv layers (32, 64 channels) each followed by 2x2 max pooling, a 512-unit
fully connected layer and the classifier. "Same" padding keeps it valid for 8x8 inputs.
"""

from __future__ import annotations

from torch import Tensor, nn

from dfnas.models.registry import MODELS


class FedAvgCNN(nn.Module):
    # training.channels_last: auto picks channels_last on CPU: faster and as exact as
    # NCHW for this network (benchmarks/bench_layout.py, tests/test_layout.py)
    cpu_channels_last = True

    def __init__(
        self, in_shape: tuple[int, int, int], num_classes: int, width: int = 32, hidden: int = 512
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * (h // 4) * (w // 4), hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@MODELS.register("cnn")
def cnn(
    in_shape: tuple[int, int, int], num_classes: int, width: int = 32, hidden: int = 512
) -> nn.Module:
    return FedAvgCNN(in_shape, num_classes, width=width, hidden=hidden)
