"""The workflow parses once: the full config check runs on the first parse of a config and
code, later parses read its result and import no torch (dfnas.workflow_plan)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from dfnas import workflow_plan
from dfnas.errors import ConfigError
from dfnas.workflow_plan import load_plan

DEFAULT = REPO / "config" / "config.yaml"


def _config() -> dict:
    return yaml.safe_load(DEFAULT.read_text())


def test_the_plan_is_built_once_and_read_after(tmp_path, monkeypatch):
    built = load_plan([str(DEFAULT)], _config(), root=tmp_path)
    (path,) = (tmp_path / "plans").glob("*.json")

    def no_second_check(*args):
        raise AssertionError("the full check ran again for an unchanged config")

    monkeypatch.setattr(workflow_plan, "build_plan", no_second_check)
    read = load_plan([str(DEFAULT)], _config(), root=tmp_path)
    assert read == built  # the parse that built it and the next give the rules the same
    assert read.methods["fednas"].stages[1].receives == {"genotype": "genotype.json"}
    assert read.methods["dfnas"].searches and not read.methods["fedavg"].searches
    assert set(read.run_inputs) == set(read.config["runs"])
    assert path.exists()


def test_a_changed_config_is_checked_again_and_a_bad_one_leaves_no_plan(tmp_path):
    load_plan([str(DEFAULT)], _config(), root=tmp_path)
    changed = _config()
    changed["seeds"] = [0, 1, 2, 3]
    load_plan([str(DEFAULT)], changed, root=tmp_path)
    assert len(list((tmp_path / "plans").glob("*.json"))) == 2
    bad = copy.deepcopy(changed)
    bad["training"]["lr"] = -1.0
    with pytest.raises(ConfigError, match="lr"):
        load_plan([str(DEFAULT)], bad, root=tmp_path)
    assert len(list((tmp_path / "plans").glob("*.json"))) == 2


def test_the_code_is_part_of_the_key(tmp_path, monkeypatch):
    key = workflow_plan.plan_key([str(DEFAULT)], _config())
    monkeypatch.setattr(workflow_plan, "code_digest", lambda: "another version")
    assert workflow_plan.plan_key([str(DEFAULT)], _config()) != key


def test_what_the_parse_imports_costs_no_torch():
    """Everything workflow/rules/common.smk imports, and reading a plan."""
    code = (
        "import sys\n"
        "from dfnas.errors import ConfigError, DfnasError\n"
        "from dfnas.federated.config import TrainConfig\n"
        "from dfnas.methods.stages import CONTRACT_FILES, STAGE_FILES, stage_folder, stage_spec\n"
        "from dfnas.report import FIGURES\n"
        "from dfnas.workflow_plan import load_plan\n"
        "from dfnas.caches import DatasetCache, PartitionCache, repair_caches\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "from dfnas.methods import METHODS\n"
        "assert 'torch' not in sys.modules, 'the registry imported its methods early'\n"
        "assert 'dfnas' in METHODS.names() and 'torch' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr


def test_old_plans_are_pruned_and_a_used_one_kept(tmp_path, monkeypatch):
    """Every code change leaves a plan behind; a new plan keeps the most recently used."""
    monkeypatch.setattr(workflow_plan, "KEEP_PLANS", 2)
    monkeypatch.setattr(workflow_plan, "build_plan", lambda files, config: _fake_plan())
    plans = tmp_path / "plans"
    for seeds in ([0], [1]):
        load_plan([str(DEFAULT)], _config() | {"seeds": seeds}, root=tmp_path)
    first = min(plans.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    os.utime(first, ns=(1, 1))  # long unused ...
    load_plan([str(DEFAULT)], _config() | {"seeds": [0]}, root=tmp_path)  # ... read again
    load_plan([str(DEFAULT)], _config() | {"seeds": [2]}, root=tmp_path)
    assert len(list(plans.glob("*.json"))) == 2 and first.exists()


def _fake_plan() -> workflow_plan.Plan:
    return workflow_plan.Plan({"runs": {}}, {}, {})
