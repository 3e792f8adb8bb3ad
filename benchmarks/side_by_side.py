"""Contenders timed side by side, as the benchmarks here compare them: rounds in which
each contender runs in turn, so that drift in the machine's speed (it moves minute to
minute on a shared CPU) falls on all of them alike; the median round per contender."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Mapping


def alternate(
    contenders: Mapping[Hashable, Callable[[], None]], calls: int, rounds: int = 5
) -> dict[Hashable, float]:
    """Median seconds per call of each contender, over ``rounds`` rounds of ``calls``
    calls each (warm the contenders up first: this times every call)."""
    times: dict[Hashable, list[float]] = {key: [] for key in contenders}
    for _ in range(rounds):
        for key, call in contenders.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                call()
            times[key].append((time.perf_counter() - t0) / calls)
    return {key: statistics.median(t) for key, t in times.items()}
