"""Settings of the federated loop, typed, with their defaults in one place.

The workflow schema (``training`` in workflow/schemas/config.schema.yaml) lists the same
keys, with no defaults of its own and the same allowed values; tests/test_defaults.py
keeps the two in step. Cross-silo (few clients, all every round) and
cross-device (many clients, a few per round) are both just values here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from dfnas.errors import ConfigError

# the TrainConfig keys a phase of a method (DFNAS's search, its child) may set for itself
LOCAL_WORK_KEYS = ("local_epochs", "local_steps", "batch_size", "lr", "lr_min")


# allowed values of the training keys that take a name
LR_SCHEDULES = ("cosine", "constant")
AUGMENTS = ("auto", "none", "flip_crop")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class LocalWork:
    """What one round asks of every client it samples: the learning rate, and how much
    local work at what batch size (``local_steps`` full batches, or else whole epochs);
    ``stage`` labels the round (search / train) for the history and per-stage costs."""

    lr: float
    batch_size: int
    local_epochs: int
    local_steps: int | None
    stage: str = "train"


@dataclass(frozen=True)
class TrainConfig:
    rounds: int = 20
    # clients asked per round: "all", a count, or (client_fraction) a share of all clients
    clients_per_round: int | str = "all"
    client_fraction: float | None = None
    # local work: whole epochs over the client's data, or a fixed number of steps
    local_epochs: int = 1
    local_steps: int | None = None
    batch_size: int = 32
    # client SGD; the learning rate follows a schedule over rounds
    lr: float = 0.05
    lr_min: float = 0.0
    lr_schedule: str = "cosine"
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float | None = None
    # fault injection: a sampled client fails to reply with this probability
    dropout: float = 0.0
    eval_every: int = 1
    eval_batch_size: int = 500
    augment: str = "auto"
    # personalization: each client fine-tunes the final model on its local train split
    personalize_epochs: int = 1
    personalize_lr: float = 0.01
    # "auto": channels_last for conv nets on CPU, where it speeds depthwise convs; or a bool
    channels_last: bool | str = "auto"
    # fp32, or bf16 autocast of client forward passes (federated.precision: a trade, off
    # by default; every method of a comparison must share it)
    precision: str = "fp32"
    # train a round's clients as one computation (federated.batched) where the method's
    # client round is FedAvg's; close to the per-client loop in fp32, equal in float64
    client_batching: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"training.{unknown[0]}: unknown key")
        cfg = cls(**values)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.clients_per_round != "all" and not (
            isinstance(self.clients_per_round, int) and self.clients_per_round >= 1
        ):
            raise ConfigError("training.clients_per_round: expected 'all' or an integer >= 1")
        if self.client_fraction is not None and self.clients_per_round != "all":
            raise ConfigError("training.client_fraction: set it or clients_per_round, not both")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"training.lr_schedule: expected one of {', '.join(LR_SCHEDULES)}")
        if self.augment not in AUGMENTS:
            raise ConfigError(f"training.augment: expected one of {', '.join(AUGMENTS)}")
        if not (self.channels_last == "auto" or isinstance(self.channels_last, bool)):
            raise ConfigError("training.channels_last: expected auto, true or false")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"training.precision: expected one of {', '.join(PRECISIONS)}")
        if self.channels_last is True and self.precision == "bf16":
            raise ConfigError(
                "training.channels_last: true is refused with precision bf16 (torch 2.13's bf16 "
                "channels_last dilated depthwise conv returns wrong weight gradients on CPU); "
                "use auto, which runs bf16 in NCHW, or false"
            )
        if not isinstance(self.client_batching, bool):
            raise ConfigError("training.client_batching: expected true or false")
        if not 0 <= self.dropout < 1:
            raise ConfigError("training.dropout: expected a probability in [0, 1)")
        if self.local_steps is not None and not (
            isinstance(self.local_steps, int) and self.local_steps >= 1
        ):
            raise ConfigError("training.local_steps: expected an integer >= 1 or null")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError("training.batch_size: expected an integer >= 1")
        if not (isinstance(self.local_epochs, int) and self.local_epochs >= 0):
            raise ConfigError("training.local_epochs: expected an integer >= 0")
        if self.local_steps is None and self.local_epochs == 0:
            raise ConfigError("training.local_epochs: 0 local epochs and no local_steps")
        if not (isinstance(self.lr, int | float) and self.lr >= 0 and self.lr_min >= 0):
            raise ConfigError("training.lr: expected lr >= 0 and lr_min >= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lr_at(self, round_: int) -> float:
        """Learning rate of round ``round_`` (0-based): cosine from lr towards lr_min,
        reached after the last round, so no round trains at lr_min itself."""
        if self.lr_schedule == "constant":
            return self.lr
        return cosine(self.lr, self.lr_min, round_ / self.rounds)

    def local_work(self, round_: int, lr: float | None = None, stage: str = "train") -> LocalWork:
        """Round ``round_``'s local work; ``lr`` overrides the schedule's rate; ``stage``
        labels the round in the history and the per-stage costs."""
        rate = self.lr_at(round_) if lr is None else lr
        return LocalWork(rate, self.batch_size, self.local_epochs, self.local_steps, stage)

    def phase(self, overrides: dict[str, Any], where: str) -> TrainConfig:
        """This config with a phase's own local work (keys of ``LOCAL_WORK_KEYS``);
        ``where`` names the config entry in errors."""
        unknown = sorted(set(overrides) - set(LOCAL_WORK_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}: not a per-phase setting "
                f"(known: {', '.join(LOCAL_WORK_KEYS)})"
            )
        cfg = replace(self, **overrides)
        try:
            cfg.check()
        except ConfigError as exc:  # name the phase's entry, not only the training key
            raise ConfigError(f"{where}: {exc}") from None
        return cfg

    def per_round(self, num_clients: int) -> int:
        if self.client_fraction is not None:
            return max(1, round(self.client_fraction * num_clients))
        if self.clients_per_round == "all":
            return num_clients
        return min(int(self.clients_per_round), num_clients)


def cosine(start: float, end: float, t: float) -> float:
    """Half a cosine from ``start`` (t = 0) to ``end`` (t = 1)."""
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * t))
