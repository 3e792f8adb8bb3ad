"""Config errors: one line naming the key, before any job."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import assert_refused

from conftest import REPO
from dfnas.config import check_config
from dfnas.errors import ConfigError


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


SHIPPED = sorted((REPO / "config").rglob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO / "config")))
def test_every_shipped_config_is_valid(path, tmp_path):
    """A config the docs point to must start; experiments never share a name. An npz
    dataset a script makes (scripts/make_mnist5k.py) is stood in for by a small file of
    the same format and shape when it is not here."""
    with open(path) as fh:
        cfg = yaml.safe_load(fh)
    for opts in cfg["datasets"].values():
        made = REPO / cfg.get("data_root", "data") / opts.get("path", "")
        if opts.get("loader") == "npz" and not made.is_file():
            rng = np.random.default_rng(0)
            x = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
            np.savez(tmp_path / opts["path"], x_train=x, y_train=np.arange(40) % 10,
                     x_test=x[:10], y_test=np.arange(10))  # fmt: skip
            cfg["data_root"] = str(tmp_path)
    check_config(cfg)


def test_shipped_experiments_have_distinct_names():
    names = [yaml.safe_load(p.read_text())["experiment"] for p in SHIPPED]
    assert len(names) == len(set(names)), names


FEDNAS = {"method": "fednas", "model_args": {"C": 2, "layers": 3}}


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.update(no_such_key=1), r"^no_such_key: unknown key"),
        (lambda c: c.pop("experiment"), r"'experiment' is a required property"),
        (lambda c: c.update(experiment="datasets"), r"^experiment: 'datasets' does not match"),
        (
            lambda c: c["partitions"]["p"].update(partitioner="foo"),
            r"^partitions\.p\.partitioner: unknown partitioner 'foo'; known: dirichlet, iid",
        ),
        (
            lambda c: c["partitions"]["p"].update(partitioner="dirichlet", alpha=-0.5),
            r"^partitions\.p\.alpha: -0\.5 is less than",
        ),
        (
            lambda c: c["partitions"]["p"].update(partitioner="dirichlet"),
            r"^partitions\.p\.alpha: partitioner 'dirichlet' needs it",
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
        # runs: methods, models, stages and typed options
        (
            lambda c: c.update(runs={"r": {"method": "fedsgd"}}),
            r"^runs\.r\.method: unknown method 'fedsgd'; known: dfnas, fedavg, fednas",
        ),
        (
            lambda c: c.update(runs={"r": {"method": "fedavg", "model": "vgg"}}),
            r"^runs\.r\.model: unknown model 'vgg'; known: cnn",
        ),
        (
            lambda c: c.update(runs={"r": {"method": "fedavg", "model_args": {"depth": 3}}}),
            r"^runs\.r\.model_args\.depth: not an argument of model 'cnn'",
        ),
        (
            lambda c: c.update(runs={"r": {"method": "dfnas", "options": {"alpha_lr": "fast"}}}),
            r"^runs\.r\.options\.alpha_lr: expected a number, got 'fast'",
        ),
        (
            lambda c: c.update(
                runs={"r": {"method": "dfnas", "options": {"client_state": "momentum"}}}
            ),
            r"^runs\.r\.options\.client_state: expected one of 'none', 'optimizer'",
        ),
        (
            lambda c: c.update(runs={"r": FEDNAS | {"options": {"alpha_betas": [0.5]}}}),
            r"^runs\.r\.options\.alpha_betas: expected a list of 2 values",
        ),
        (
            lambda c: c.update(runs={"r": {"method": "fedavg", "options": {"mu": 0.1}}}),
            r"^runs\.r\.options\.mu: unknown option \(known: none\)",
        ),
        (
            lambda c: c.update(runs={"r": {"method": "fedavg", "train_stage": {}}}),
            r"^runs\.r\.train_stage: 'train' is the first stage",
        ),
        (
            lambda c: c.update(runs={"r": FEDNAS | {"tune_stage": {}}}),
            r"^runs\.r\.tune_stage: 'tune' is not a later stage of it",
        ),
        (
            lambda c: c.update(
                runs={"r": FEDNAS | {"train_stage": {"model_args": {"genotype": {}}}}}
            ),
            r"^runs\.r\.train_stage\.model_args\.genotype: handed over by stage search",
        ),
        (
            lambda c: c.update(
                runs={"r": FEDNAS | {"train_stage": {"training": {"lr_schedule": "step"}}}}
            ),
            r"^runs\.r\.train_stage\.training\.lr_schedule: 'step' is not one of",
        ),
        (
            lambda c: c.update(
                devices={"phone": {"macs": 1e9}},
                runs={"r": {"method": "fedavg", "devices": ["phone"]}},
            ),
            r"^runs\.r\.devices: method 'fedavg' does not search per device type",
        ),
        (
            lambda c: c.update(training={"channels_last": "yes"}),
            r"^training\.channels_last: 'yes' is not one of: auto, True, False",
        ),
        (
            lambda c: c.update(
                runs={
                    "r": {
                        "method": "dfnas",
                        "training": {"rounds": 4},
                        "options": {"search_rounds": 9},
                    }
                }
            ),
            r"^runs\.r\.options\.search_rounds: expected 1\.\.4",
        ),
        (
            lambda c: c.update(client_workers=4, threads_per_run=2),
            r"^client_workers: 4 workers would share 2 threads_per_run",
        ),
        (
            lambda c: c.update(client_workers=2, threads_per_run=2, device="cuda"),
            r"^client_workers: worker processes train clients on CPU only",
        ),
        (
            lambda c: c.update(client_workers=0),
            r"^client_workers: 0 is less than the minimum of 1",
        ),
    ],
)
def test_bad_config_names_the_key(edit, message):
    assert_refused(_base(), edit, message)


def test_yaml_booleans_are_booleans():
    cfg = _base() | {"training": yaml.safe_load("channels_last: true")}
    assert check_config(cfg)["training"]["channels_last"] is True


def test_clients_per_round_is_checked_at_its_effective_value():
    """A global value that every run overrides is not what runs: no error for it."""
    cfg = _base()
    cfg["training"] = {"clients_per_round": 50}
    cfg["runs"] = {"r": {"method": "fedavg", "training": {"clients_per_round": 2}}}
    check_config(cfg)
    cfg["runs"]["r"]["training"]["clients_per_round"] = 9
    with pytest.raises(ConfigError, match=r"^runs\.r\.training\.clients_per_round: 9 but"):
        check_config(cfg)


def test_defaults_beside_a_ref_are_filled():
    cfg = check_config(_base())
    assert cfg["training"] == {} and cfg["resources"] == {}
