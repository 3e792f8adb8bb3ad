"""Every registered method and model, end to end, as timm tests every model it lists: a
new method or model is covered by being registered. Also the declarations the workflow
builds its rules from, and how methods are found."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import MISSING, fields
from typing import get_type_hints

import pytest
import torch
from helpers import CPU, make_method, partition, tiny_dataset

from conftest import REPO
from dfnas.errors import ConfigError
from dfnas.federated.loop import run_federated
from dfnas.methods import METHODS
from dfnas.methods.options import matches
from dfnas.methods.stages import CONTRACT_FILES, STAGE_FILES, stage_folder, stage_spec
from dfnas.models import MODELS
from dfnas.partition.stage import write_partition
from dfnas.run import run_method

# sizes that keep a step fast on 8x8 toy images; a method not listed runs at its defaults
SMALL_RUNS = {
    "dfnas": {
        "model_args": {"stem": 8, "stages": [[1, 16], [1, 32]], "last": 32},
        "options": {"search_rounds": 1, "warmup_rounds": 0},
    },
    "fednas": {"model_args": {"C": 2, "layers": 3}, "train_stage": {"model_args": {"C": 4}}},
}
SMALL_MODELS = {"darts": {"C": 4, "layers": 3}, "darts_search": {"C": 2, "layers": 3}}
TRAINING = {"rounds": 2, "local_steps": 1, "batch_size": 8, "personalize_epochs": 1}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    ds = tiny_dataset()
    ds.save(root / "data.npz")
    write_partition(ds, {"partitioner": "iid", "num_clients": 3}, root / "p")
    return root / "data.npz", root / "p" / "partition.json"


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_runs_all_its_stages(name, inputs, tmp_path):
    data, part = inputs
    run = {"method": name, **SMALL_RUNS.get(name, {})}
    declared = METHODS.get(name)
    stages = declared.stages
    prior = None
    for index, stage in enumerate(stages):
        out = tmp_path / stage_folder(stages, index)
        spec = stage_spec(run, stages, index, TRAINING)
        metrics = run_method(
            spec, data, part, 0, out, name="r", stage=stage.name, prior=prior, settings=CPU
        )
        files = CONTRACT_FILES if index == len(stages) - 1 else STAGE_FILES
        for file in (*files, *declared.stage_writes(stage)):
            assert (out / file).exists(), f"{name} stage {stage.name} did not write {file}"
        prior = out
    assert (metrics["method"], metrics["run"]) == (name, "r")
    assert metrics["rounds"] == TRAINING["rounds"] * len(stages)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["train_flops"] > 0


@pytest.mark.parametrize("model", MODELS.names())
def test_every_model_trains_federated(model):
    ds = tiny_dataset()
    method = make_method(
        ds, "fedavg", model, model_args=SMALL_MODELS.get(model), rounds=1, local_steps=1
    )
    result = run_federated(method, ds, partition(ds, 2), seed=0, settings=CPU, log=lambda *_: 0)
    assert torch.isfinite(torch.tensor(result.history[-1]["train_loss"]))
    assert result.metrics["params"] > 0 and result.metrics["macs"] > 0


@pytest.mark.parametrize("name", METHODS.names())
def test_declarations_the_workflow_builds_on(name):
    cls = METHODS.get(name)
    names = [s.name for s in cls.stages]
    assert len(set(names)) == len(names) >= 1
    cls.check_stages()  # every hand-off received is written by the stage before
    for stage in cls.stages:
        assert stage.method is None or stage.method in METHODS
        assert not set(cls.stage_writes(stage)) & set(CONTRACT_FILES)
    for fig in cls.figures:
        assert fig.source in cls.stage_writes(cls.stages[-1])
        module, function = fig.draw.split(":")
        assert callable(getattr(importlib.import_module(module), function))
        assert (REPO / "workflow" / "report" / fig.caption).exists()
    # every default is a value the option's own type accepts (the type a config is held to)
    hints = get_type_hints(cls.options)
    for f in fields(cls.options):
        default = f.default_factory() if f.default is MISSING else f.default
        assert matches(default, hints[f.name]), (f.name, hints[f.name])


def test_methods_are_found_in_files_and_entry_points(tmp_path):
    """A module dropped into dfnas/methods is found (all shipped methods come that way);
    a package of one's own registers through the dfnas.methods entry point group."""
    package = REPO / "src" / "dfnas" / "methods"
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "base", "options"}
    modules -= {"registry", "spec", "stages"}
    modules |= {p.parent.name for p in package.glob("*/__init__.py")}  # a method's package
    found = {METHODS.get(n).implementation.__module__.split(".")[2] for n in METHODS.names()}
    assert found == modules

    site = tmp_path / "site"
    (site / "my_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "my_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1\n"
    )
    (site / "my_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[dfnas.methods]\nmine = my_plugin\n"
    )
    (site / "my_plugin.py").write_text(
        "from dfnas.methods.base import FedMethod\n"
        "from dfnas.methods.registry import METHODS\n\n"
        "@METHODS.register('mine')\nclass Mine(FedMethod):\n    pass\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "src")])}
    code = "from dfnas.methods import METHODS; print(METHODS.names())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "'mine'" in out.stdout and "'fednas'" in out.stdout


def test_hooks_see_the_rounds_global_state():
    """ctx.global_state is the server's state the client started from, unchanged by its
    own steps (FedProx's anchor)."""
    ds = tiny_dataset()
    method = make_method(ds, rounds=1, local_steps=3, lr=0.5)
    seen = []
    plain_step = method.train_step

    def step(model, x, y, optimizer, ctx):
        seen.append({k: v.clone() for k, v in ctx.global_state.items()})
        return plain_step(model, x, y, optimizer, ctx)

    start = {k: v.clone() for k, v in method.build_model().state_dict().items()}
    method.train_step = step
    torch.manual_seed(0)
    run_federated(method, ds, partition(ds, 1), seed=0, settings=CPU, log=lambda *_: 0)
    assert len(seen) == 3
    for state in seen:
        assert all(torch.equal(state[k].contiguous(), seen[0][k].contiguous()) for k in state)
    assert json.dumps(sorted(seen[0])) == json.dumps(sorted(start))


def test_a_declaration_that_contradicts_itself_is_refused_before_training():
    """A hand-off no stage writes, or a figure from a file the run does not write, stops the
    workflow at start; a file declared from a member the method lacks stops the build."""
    from dfnas.methods import FedMethod, MethodSpec, RunFigure, Stage

    handoff = MethodSpec("x", FedMethod, stages=(Stage("a"), Stage("b", receives={"g": "g.json"})))
    with pytest.raises(ConfigError, match=r"stage b receives g from 'g.json', which stage a"):
        handoff.check_stages()
    figure = MethodSpec("x", FedMethod, figures=(RunFigure("f", "f.json", "m:f", "f.rst"),))
    with pytest.raises(ConfigError, match=r"figure f is drawn from 'f.json'"):
        figure.check_stages()
    ds = tiny_dataset()
    setup = make_method(ds).setup
    with pytest.raises(TypeError, match=r"declares writes from \['genotype'\]"):
        MethodSpec("x", FedMethod, writes={"g.json": "genotype"}).build(setup)
    assert MethodSpec("x", FedMethod, writes={"g.json": "genotype"}).stage_writes(Stage("a")) == (
        "g.json",
    )


def test_a_methods_input_files_are_name_path_pairs_each_given_once():
    """``dfnas run --input NAME=PATH``: the generic way a method gets the files it declares."""
    from dfnas.federated.settings import parse_inputs

    assert parse_inputs(["latency_table=a=b.json"]) == {"latency_table": "a=b.json"}
    with pytest.raises(ConfigError, match=r"^--input table: expected NAME=PATH$"):
        parse_inputs(["table"])
    with pytest.raises(ConfigError, match=r"^--input t: given twice$"):
        parse_inputs(["t=a", "t=b"])
