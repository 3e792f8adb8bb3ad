"""A method's stages, what each hands the next, and the per-run figures drawn from the
files they write; declared where the method registers (``methods.spec.MethodSpec``).

The workflow builds its rules from these declarations (workflow/rules/methods.smk): one
rule per (method, stage), one per (method, figure). It never looks at a method's name, so
a two-stage method is one file, like a one-stage one::

    stages=(
        Stage("search"),
        Stage("train", method="fedavg", model="darts", receives={"genotype": "genotype.json"}),
    )

A stage writes, beside its contract, the files the method it runs declares (``writes``
of its ``MethodSpec``): FedNAS's search writes genotype.json, which the train stage
receives as its DARTS network's ``genotype``.

A run's config entry sets the first stage (its method, model, model_args, options,
training); a later stage ``X`` takes its own from the entry's ``X_stage`` (model_args,
options, and training over the run's). Only the last stage writes the run's result
contract in the run's folder; an earlier stage writes its own contract into a subfolder
named after it, and the next stage reads the hand-off files from there and adds the
earlier stages' costs to its own (``results.combine_stages``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# files every stage writes (results.write_results); the last stage's are the run's result
STAGE_FILES = ("metrics.json", "history.csv")
CONTRACT_FILES = (*STAGE_FILES, "model.pt", "model.json", "personalized.csv", "config.json")


@dataclass(frozen=True)
class Stage:
    """One job of a method's run."""

    name: str
    # the registered method this stage runs (None: the run's own) and the model it
    # builds (None: the run's); FedNAS's train stage is plain FedAvg on a DARTS network
    method: str | None = None
    model: str | None = None
    # model_args key -> file written by the previous stage: the hand-off
    receives: dict[str, str] = field(default_factory=dict)

    def config_key(self) -> str:
        """The run-config key holding a later stage's own settings."""
        return f"{self.name}_stage"


@dataclass(frozen=True)
class RunFigure:
    """A figure drawn per run from one file the run's last stage writes."""

    name: str  # folder under results/<experiment>/figures/, and its report category
    source: str  # the file it is drawn from (one the last stage's method ``writes``)
    draw: str  # "module:function", called as function(source_path, out_stem)
    caption: str  # the caption's file under workflow/report/

    def render(self, source: str | Path, stem: str | Path) -> None:
        """Draw it from ``source`` to ``stem``.png and .pdf (the workflow's rule and the
        archive's tables both draw through here)."""
        import importlib

        module, function = self.draw.split(":")
        getattr(importlib.import_module(module), function)(source, stem)


ONE_STAGE = (Stage("train"),)


def stage_spec(
    run: dict[str, Any], stages: tuple[Stage, ...], index: int, training: dict[str, Any]
) -> dict[str, Any]:
    """The spec stage ``index`` runs from, with exactly what shapes that stage (so the
    workflow reruns a stage only when its own settings change). ``run`` is one entry of
    the config's runs, ``training`` the config's global training. ``method`` stays the
    run's method, the config's word; the stage says which registered method executes it."""
    training = {**training, **run.get("training", {})}
    if index == 0:
        own, model = run, run.get("model")
    else:
        own, model = run.get(stages[index].config_key(), {}), stages[index].model
        training = {**training, **own.get("training", {})}
    spec = {
        "method": run["method"],
        "model_args": dict(own.get("model_args", {})),
        "options": dict(own.get("options", {})),
        "training": training,
    }
    return spec | ({"model": model} if model else {})


def stage_folder(stages: tuple[Stage, ...], index: int) -> str:
    """Where stage ``index`` writes, relative to the run's folder: the last in it."""
    return "" if index == len(stages) - 1 else stages[index].name
