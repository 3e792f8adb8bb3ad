"""Config errors: one line naming the key, before any job."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO
from dfnas.config import check_config, load_schema
from dfnas.errors import ConfigError
from dfnas.partition import PARTITIONERS


def _base() -> dict:
    return {
        "experiment": "t",
        "datasets": {"digits": {}},
        "partitions": {"p": {"partitioner": "iid", "num_clients": 4}},
    }


def test_default_config_is_valid_and_defaults_are_filled():
    with open(REPO / "config" / "config.yaml") as fh:
        cfg = check_config(yaml.safe_load(fh))
    assert cfg["data_root"] == "data"
    assert all(p["seed"] == 42 for p in cfg["partitions"].values())


def test_schema_enum_matches_registry():
    enum = load_schema()["$defs"]["partition"]["properties"]["partitioner"]["enum"]
    assert sorted(enum) == PARTITIONERS.names()


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.update(no_such_key=1), r"^no_such_key: unknown key"),
        (lambda c: c.pop("experiment"), r"'experiment' is a required property"),
        (lambda c: c.update(experiment="datasets"), r"^experiment: 'datasets' does not match"),
        (
            lambda c: c["partitions"]["p"].update(partitioner="foo"),
            r"^partitions\.p\.partitioner: 'foo' is not one of",
        ),
        (
            lambda c: c["partitions"]["p"].update(partitioner="dirichlet", alpha=-0.5),
            r"^partitions\.p\.alpha: -0\.5 is less than",
        ),
        (
            lambda c: c["partitions"]["p"].update(partitioner="dirichlet"),
            r"^partitions\.p: 'alpha' is a required property",
        ),
        (
            lambda c: c["partitions"]["p"].update(num_clients=5000),
            r"^partitions\.p\.num_clients: 5000 clients but dataset 'digits' has only 1437",
        ),
        (
            lambda c: c["partitions"]["p"].update(num_clients=0),
            r"^partitions\.p\.num_clients: 0 is less than the minimum of 1",
        ),
        (
            lambda c: c["partitions"]["p"].update(alpha=1.0),
            r"^partitions\.p\.alpha: not a parameter of partitioner 'iid'",
        ),
        (
            lambda c: c["partitions"]["p"].update(colour="red"),
            r"^partitions\.p\.colour: unknown key",
        ),
        (
            lambda c: c["datasets"].update(svhn={}),
            r"^datasets\.svhn\.loader: unknown loader 'svhn'",
        ),
        (
            lambda c: c["datasets"].update(mine={"loader": "npz"}),
            r"^datasets\.mine\.path: the npz loader needs",
        ),
        (
            lambda c: c["partitions"]["p"].update(partitioner="natural"),
            r"^partitions\.p\.partitioner: 'natural' needs client ids",
        ),
        # four that once reached a job
        (
            lambda c: c.update(
                training={"clients_per_round": 50}, runs={"r": {"method": "fedavg"}}
            ),
            r"^training\.clients_per_round: 50 but partition 'p' has 4 clients",
        ),
        (
            lambda c: c["datasets"].update(mine={"loader": "npz", "path": "no/such.npz"}),
            r"^datasets\.mine\.path: no/such\.npz not found",
        ),
        (
            lambda c: c.update(
                runs={
                    "f": {
                        "method": "fednas",
                        "model_args": {"C": 2, "layers": 3},
                        "train_stage": {"model_args": {"C": -4}},
                    }
                }
            ),
            r"^runs\.f\.train_stage\.model_args: model 'darts' cannot be built",
        ),
        (
            lambda c: c.update(
                devices={"tiny": {"macs": 1000}},
                runs={"d": {"method": "dfnas", "devices": ["tiny"]}},
            ),
            r"^runs\.d-tiny\.options\.budget_macs: 1000 is below the cheapest child",
        ),
    ],
)
def test_bad_config_names_the_key(edit, message):
    cfg = _base()
    edit(cfg)
    with pytest.raises(ConfigError, match=message) as info:
        check_config(cfg)
    assert "\n" not in str(info.value)


def test_clients_per_round_is_checked_at_its_effective_value():
    """A global value that every run overrides is not what runs: no error for it."""
    cfg = _base()
    cfg["training"] = {"clients_per_round": 50}
    cfg["runs"] = {"r": {"method": "fedavg", "training": {"clients_per_round": 2}}}
    check_config(cfg)
    cfg["runs"]["r"]["training"]["clients_per_round"] = 9
    with pytest.raises(ConfigError, match=r"^runs\.r\.training\.clients_per_round: 9 but"):
        check_config(cfg)
