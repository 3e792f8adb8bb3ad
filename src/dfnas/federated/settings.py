"""How and where a run executes, beside what its config says it computes.

The device, the threads, the client workers, where clients train (in this process or on
Flower nodes) and the files the workflow measured for the method (a latency table) come
from the machine and the workflow, not from the run's config entry: they are not part of
the run's fingerprint, and the workflow passes the first three as resources, so changing
them reruns nothing. They are gathered once where a run starts (the ``dfnas run``
command, the Flower ServerApp, a test) and travel whole to ``run.run_method``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dfnas.errors import ConfigError
from dfnas.federated.clients import ClientRunner


@dataclass(frozen=True)
class RunSettings:
    device: str = "auto"
    threads: int | None = None  # torch threads of the process (None: torch's default)
    client_workers: int = 1  # forked processes a round's clients train in
    clients: ClientRunner | None = None  # where clients train, when not in this process
    inputs: Mapping[str, str] = field(default_factory=dict)  # files the method reads, by name


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """``NAME=PATH`` pairs (``dfnas run --input``) as a mapping, each name once."""
    inputs: dict[str, str] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--input {pair}: expected NAME=PATH")
        if name in inputs:
            raise ConfigError(f"--input {name}: given twice")
        inputs[name] = path
    return inputs
