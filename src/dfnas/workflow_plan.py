"""What the workflow's parse needs, checked once per config and code, then read from disk.

Snakemake parses the Snakefile on every call, and on a cluster in every job. The full
config check builds every method's network for every run and stage (a DFNAS run counts
its supernet's FLOPs), and the method registry imports torch: seconds each time, for a
config that has not changed. So the parse asks for a ``Plan``: the checked config (with
defaults filled and runs expanded) and what each registered method declares to the
workflow (its stages, per-run figures, whether it searches, the files each stage writes,
the files each run reads). The first parse of a config builds it with the full check and
writes it under ``.snakemake/dfnas/plans/``, keyed by a digest of the config as given,
the config files' bytes, and the source of this package (and the names of methods from
other packages), so any change to them checks again. Later parses read the JSON and
import nothing heavy.

The shared data caches are checked the same way, by size and modification time
(``dfnas.caches``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from dfnas.io import atomic_path
from dfnas.methods.stages import RunFigure, Stage

PLAN_DIR = Path(".snakemake") / "dfnas"
PACKAGE = Path(__file__).parent


@dataclass(frozen=True)
class DeclaredMethod:
    """A registered method as the workflow reads it (``methods.spec.MethodSpec``'s
    declarations, without the implementation)."""

    name: str
    stages: tuple[Stage, ...]
    figures: tuple[RunFigure, ...]
    searches: bool
    writes: dict[str, tuple[str, ...]]  # stage name -> files it writes beside the contract

    def stage_writes(self, stage: Stage) -> tuple[str, ...]:
        return self.writes[stage.name]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> DeclaredMethod:
        return cls(
            name=blob["name"],
            stages=tuple(Stage(**s) for s in blob["stages"]),
            figures=tuple(RunFigure(**f) for f in blob["figures"]),
            searches=bool(blob["searches"]),
            writes={k: tuple(v) for k, v in blob["writes"].items()},
        )


@dataclass(frozen=True)
class Plan:
    config: dict[str, Any]  # checked: defaults filled, device and arch runs expanded
    methods: dict[str, DeclaredMethod]  # every registered method, by name
    run_inputs: dict[str, tuple[str, ...]]  # run -> input files its method reads

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "methods": {k: m.to_json() for k, m in self.methods.items()},
            "run_inputs": self.run_inputs,
        }

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> Plan:
        return cls(
            config=blob["config"],
            methods={k: DeclaredMethod.from_json(m) for k, m in blob["methods"].items()},
            run_inputs={k: tuple(v) for k, v in blob["run_inputs"].items()},
        )


def code_digest() -> str:
    """This package's source and the methods other packages register: what the checks
    and the declarations come from."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix in (".py", ".yaml", ".json") and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes())
    for entry in sorted(entry_points(group="dfnas.methods"), key=lambda e: e.name):
        h.update(f"{entry.name}={entry.value}".encode())
    return h.hexdigest()


def plan_key(config_files: list[str], config: dict[str, Any]) -> str:
    h = hashlib.sha256(code_digest().encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name in config_files:
        h.update(Path(name).read_bytes())
    return h.hexdigest()[:16]


def build_plan(config_files: list[str], config: dict[str, Any]) -> Plan:
    """The full check (``config.check_config``) and the registry's declarations."""
    from dfnas.config import check_config, check_yaml_keys
    from dfnas.methods import METHODS

    for name in config_files:
        check_yaml_keys(name)
    checked = check_config(config)
    methods = {}
    for name in METHODS.names():
        spec = METHODS.get(name)
        methods[name] = DeclaredMethod(
            name=name,
            stages=spec.stages,
            figures=spec.figures,
            searches=spec.searches,
            writes={s.name: spec.stage_writes(s) for s in spec.stages},
        )
    run_inputs = {
        run: tuple(METHODS.get(entry["method"]).input_files(entry.get("options", {})))
        for run, entry in checked["runs"].items()
    }
    return Plan(checked, methods, run_inputs)


def load_plan(config_files: list[str], config: dict[str, Any], root: Path = PLAN_DIR) -> Plan:
    """The plan of this config and code: read if an earlier parse made it, else built
    (raises ``ConfigError`` on a bad config, and then writes nothing). Each code change
    leaves a plan behind, so a new one prunes all but the ``KEEP_PLANS`` most recently
    used (a read marks its plan used)."""
    path = root / "plans" / f"{plan_key(config_files, config)}.json"
    if path.exists():
        try:
            plan = Plan.from_json(json.loads(path.read_text()))
            os.utime(path)
            return plan
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable or just pruned by another parse: build again
    text = json.dumps(build_plan(config_files, config).to_json(), sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    _prune(path.parent, KEEP_PLANS)
    # what a later parse will read, exactly (tuples as lists, keys as strings): the rules'
    # params must not differ between the parse that built the plan and the next
    return Plan.from_json(json.loads(text))


KEEP_PLANS = 32


def _prune(folder: Path, keep: int) -> None:
    def used(plan: Path) -> int:
        try:
            return plan.stat().st_mtime_ns
        except OSError:
            return 0

    for plan in sorted(folder.glob("*.json"), key=used, reverse=True)[keep:]:
        plan.unlink(missing_ok=True)
