"""Client data on the training device, and minibatches formed on the fly.

The whole train set stays uint8 on the device; a batch is gathered by index, converted to
float and normalized in one fused step, optionally augmented (random crop with 4-pixel
padding and horizontal flip, the CIFAR standard), and put in channels_last when the
model runs faster that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dfnas.data import ImageDataset


@dataclass
class DeviceData:
    x_train: torch.Tensor  # uint8 (N, C, H, W)
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    scale: torch.Tensor  # 1 / (255 std), shape (1, C, 1, 1)
    shift: torch.Tensor  # mean / std
    augment: bool
    memory_format: torch.memory_format

    @classmethod
    def from_dataset(
        cls, ds: ImageDataset, device: torch.device, augment: str, channels_last: bool
    ) -> DeviceData:
        return cls.from_arrays(
            (ds.x_train, ds.y_train),
            (ds.x_test, ds.y_test),
            (ds.mean, ds.std),
            device,
            augment,
            channels_last,
        )

    @classmethod
    def from_arrays(
        cls,
        train: tuple[np.ndarray, np.ndarray],
        test: tuple[np.ndarray, np.ndarray],
        norm: tuple[tuple[float, ...], tuple[float, ...]],
        device: torch.device,
        augment: str,
        channels_last: bool,
    ) -> DeviceData:
        """From uint8 images and labels: a whole dataset, or one deployed client's own
        train images alone (``dfnas.deploy.flower``, with an empty test split)."""
        mean = torch.tensor(norm[0], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(norm[1], dtype=torch.float32).view(1, -1, 1, 1)
        _, c, h, _ = train[0].shape
        if augment == "auto":  # crop + flip suits natural RGB images, not digits or letters
            augment = "flip_crop" if c == 3 and h >= 24 else "none"
        return cls(
            x_train=torch.from_numpy(train[0]).to(device),
            y_train=torch.from_numpy(train[1]).to(device),
            x_test=torch.from_numpy(test[0]).to(device),
            y_test=torch.from_numpy(test[1]).to(device),
            scale=(1.0 / (255.0 * std)).to(device),
            shift=(mean / std).to(device),
            augment=augment == "flip_crop",
            memory_format=torch.channels_last if channels_last else torch.contiguous_format,
        )

    def prepare(self, xb: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """uint8 batch -> normalized float batch (augmented when training with ``gen``)."""
        if gen is not None and self.augment:
            xb = _flip_crop(xb, gen)
        x = xb.to(torch.float32).mul_(self.scale).sub_(self.shift)
        return x.contiguous(memory_format=self.memory_format)

    @staticmethod
    def count_batches(n: int, batch_size: int, epochs: int, steps: int | None = None) -> int:
        """How many batches ``batches`` yields for ``n`` samples, without drawing them (a
        method may plan its steps before a client downloads)."""
        if steps is not None:
            return steps
        full, last = divmod(n, batch_size)
        per_epoch = full + (1 if last > 1 or (last == 1 and n == 1) else 0)
        return epochs * per_epoch

    def batches(
        self,
        indices: torch.Tensor,
        batch_size: int,
        gen: torch.Generator,
        epochs: int,
        steps: int | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled minibatches over ``indices``: ``epochs`` passes (the last batch of a
        pass may be short, and is dropped if it holds a single sample), or exactly
        ``steps`` full batches drawn from a stream of reshuffled passes when ``steps``
        is set."""
        n = len(indices)
        if steps is None:
            for _ in range(epochs):
                order = indices[torch.randperm(n, generator=gen).to(indices.device)]
                for start in range(0, n, batch_size):
                    idx = order[start : start + batch_size]
                    if len(idx) == 1 and n > 1:
                        continue  # BatchNorm cannot train on one sample at 1x1 resolution
                    yield self.prepare(self.x_train[idx], gen), self.y_train[idx]
            return
        size = min(batch_size, n)
        stream = indices[:0]
        for _ in range(steps):
            while len(stream) < size:
                perm = indices[torch.randperm(n, generator=gen).to(indices.device)]
                stream = torch.cat((stream, perm))
            idx, stream = stream[:size], stream[size:]
            yield self.prepare(self.x_train[idx], gen), self.y_train[idx]

    def test_batches(
        self, batch_size: int, x: torch.Tensor | None = None, y: torch.Tensor | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x = self.x_test if x is None else x
        y = self.y_test if y is None else y
        for start in range(0, len(y), batch_size):
            yield self.prepare(x[start : start + batch_size]), y[start : start + batch_size]


def _flip_crop(xb: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    b, _, h, w = xb.shape
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=gen).tolist()
    flips = torch.rand(b, generator=gen).lt(0.5).tolist()
    padded = F.pad(xb, (pad, pad, pad, pad))
    out = torch.empty_like(xb)
    for i, ((dy, dx), flip) in enumerate(zip(offsets, flips, strict=True)):
        crop = padded[i, :, dy : dy + h, dx : dx + w]
        out[i] = crop.flip(-1) if flip else crop
    return out


def split_validation(
    client: int, indices: np.ndarray, fraction: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """A client's train indices, and the local validation split carved from them when a
    method asks for one (FedNAS). The split depends only on the client and its indices,
    not the seed, so a deployed client draws the same one from its own data."""
    if fraction <= 0:
        return np.asarray(indices), None
    perm = np.random.default_rng([client, 7]).permutation(indices)
    n_val = min(max(1, round(fraction * len(perm))), len(perm) - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def index_tensor(indices: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(indices, dtype=torch.long, device=device)
