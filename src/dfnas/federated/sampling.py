"""Which clients train in a round, and which of them fail: pure functions of
(seed, round), drawn the same way for every method so comparisons are fair."""

from __future__ import annotations

import numpy as np


def sample_clients(num_clients: int, per_round: int, seed: int, round_: int) -> list[int]:
    if per_round >= num_clients:
        return list(range(num_clients))
    rng = np.random.default_rng([seed, round_, 0])
    return sorted(rng.choice(num_clients, size=per_round, replace=False).tolist())


def surviving_clients(sampled: list[int], dropout: float, seed: int, round_: int) -> list[int]:
    """The sampled clients that reply; each fails independently with prob ``dropout``."""
    if dropout <= 0:
        return list(sampled)
    rng = np.random.default_rng([seed, round_, 1])
    fails = rng.random(len(sampled)) < dropout
    return [k for k, f in zip(sampled, fails, strict=True) if not f]


def client_seed(seed: int, round_: int, client: int) -> int:
    """Seed of a client's local work in one round (shuffling, augmentation, sampling)."""
    return int(np.random.SeedSequence([seed, round_, client]).generate_state(1)[0])


def server_seed(seed: int, round_: int) -> int:
    """Seed of the server's work after round ``round_``'s clients (a stream no client
    draws from), so it does not depend on which process trained the last client."""
    return int(np.random.SeedSequence([seed, round_, 0, 1]).generate_state(1)[0])
