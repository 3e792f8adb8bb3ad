"""Bad configs a clumsy or hostile user writes, each refused at start with one line that
names the key: NaN and infinity in every numeric family (YAML's .nan and .inf; a schema's
minimum lets NaN through), names that would become path components ('..', separators),
shell metacharacters in name-like values, a `reference` that names no run, and a run
generated per device type that takes another run's name."""

from __future__ import annotations

import math

import pytest
from helpers import assert_refused

from dfnas.config import check_config

NAN, INF = math.nan, math.inf
SHELL = "x; touch PWNED; echo"


def _base() -> dict:
    return {
        "experiment": "t",
        "datasets": {"digits": {}},
        "partitions": {"p": {"partitioner": "dirichlet", "num_clients": 4, "alpha": 0.5}},
        "runs": {"r": {"method": "fedavg", "model": "cnn"}},
    }


def _training(key, value, where="global"):
    def edit(c):
        if where == "global":
            c["training"] = {key: value}
        else:
            c["runs"]["r"]["training"] = {key: value}

    return edit


TRAINING_NUMBERS = [
    "lr",
    "lr_min",
    "momentum",
    "weight_decay",
    "grad_clip",
    "dropout",
    "personalize_lr",
    "client_fraction",
]

CASES = [
    # NaN and infinity, global and per run: the message names the layer that set it
    *[
        (
            _training(k, v, w),
            rf"^{'training' if w == 'global' else 'runs.r.training'}\.{k}: "
            rf"{'nan' if v != v else 'inf'} is not a finite number",
        )  # fmt: skip
        for k in TRAINING_NUMBERS
        for v, w in ((NAN, "global"), (INF, "run"))
    ],
    (lambda c: c["partitions"]["p"].update(alpha=NAN), r"^partitions\.p\.alpha: nan is not a"),
    (lambda c: c["partitions"]["p"].update(alpha=INF), r"^partitions\.p\.alpha: inf is not a"),
    (
        lambda c: c["partitions"]["p"].update(local_test_fraction=NAN),
        r"^partitions\.p\.local_test_fraction: nan",
    ),
    (lambda c: c.update(target_fraction=NAN), r"^target_fraction: nan is not a finite number"),
    (lambda c: c.update(target_accuracy=INF), r"^target_accuracy: inf is not a finite number"),
    (
        lambda c: c.update(resources={"minutes_per_round": INF}),
        r"^resources\.minutes_per_round: inf",
    ),
    (lambda c: c.update(devices={"phone": {"macs": NAN}}), r"^devices\.phone\.macs: nan"),
    (
        lambda c: c.update(devices={"phone": {"latency_ms": INF}}),
        r"^devices\.phone\.latency_ms: inf",
    ),
    (
        lambda c: c["runs"]["r"].update(
            method="dfnas", model="shufflenetv2", options={"alpha_lr": NAN}
        ),
        r"^runs\.r\.options\.alpha_lr: nan is not a finite number",
    ),
    (
        lambda c: c["runs"]["r"].update(
            method="dfnas", model="shufflenetv2", options={"fix_threshold": INF}
        ),
        r"^runs\.r\.options\.fix_threshold: inf",
    ),
    (
        lambda c: c["runs"]["r"].update(
            method="fednas", model="darts_search", options={"alpha_betas": [0.5, NAN]}
        ),
        r"^runs\.r\.options\.alpha_betas\.1: nan",
    ),
    (
        lambda c: c["runs"]["r"].update(model_args={"width": INF}),
        r"^runs\.r\.model_args\.width: inf",
    ),
    # what Adam would refuse inside the job, hours later
    (
        lambda c: c["runs"]["r"].update(
            method="fednas", model="darts_search", options={"alpha_betas": [2.0, 0.999]}
        ),
        r"^runs\.r\.options: alpha_betas\[0\]: expected a number in \[0, 1\), got 2\.0",
    ),
    # a name both a run and an external run: the tables would read one folder for both
    (
        lambda c: c.update(external_runs=["r"]),
        r"^external_runs\.0: 'r' is also a run of this config",
    ),
    # a verdict between runs that do not search: its search precondition would mean nothing
    (
        lambda c: c.update(verdict={"claimant": "r", "baseline": "r"}),
        r"^verdict\.claimant: 'r' is a run of fedavg, which does not search",
    ),
    (lambda c: c.update(experiment="e" * 101), r"^experiment: 'e+' is too long"),
    # names that become path components
    (
        lambda c: c.update(partitions={"..": _base()["partitions"]["p"]}),
        r"^partitions: '\.\.' does not match",
    ),
    (
        lambda c: c.update(partitions={".": _base()["partitions"]["p"]}),
        r"^partitions: '\.' does not match",
    ),
    (
        lambda c: c.update(partitions={"a/b": _base()["partitions"]["p"]}),
        r"^partitions: 'a/b' does not match",
    ),
    (lambda c: c.update(experiment=".."), r"^experiment: '\.\.' does not match"),
    (lambda c: c.update(experiment="a/b"), r"^experiment: 'a/b' does not match"),
    (lambda c: c.update(datasets={"../d": {}}), r"^datasets: '\.\./d' does not match"),
    (
        lambda c: c.update(runs={"a/b": {"method": "fedavg"}}),
        r"^runs: 'a/b' does not match",
    ),
    (lambda c: c.update(devices={"a/b": {"macs": 1e6}}), r"^devices: 'a/b' does not match"),
    (lambda c: c.update(external_runs=["../x"]), r"^external_runs\.0: '\.\./x' does not match"),
    # shell metacharacters in every name-like value
    (lambda c: c.update(reference=SHELL), r"^reference: 'x; touch PWNED; echo' does not match"),
    (lambda c: c.update(experiment=SHELL), r"^experiment: 'x; touch PWNED; echo' does not"),
    (lambda c: c.update(device=SHELL), r"^device: 'x; touch PWNED; echo' does not match"),
    (lambda c: c.update(datasets={SHELL: {}}), r"^datasets: 'x; touch PWNED; echo' does not"),
    (
        lambda c: c.update(partitions={SHELL: _base()["partitions"]["p"]}),
        r"^partitions: 'x; touch PWNED; echo' does not",
    ),
    (
        lambda c: c.update(runs={SHELL: {"method": "fedavg"}}),
        r"^runs: 'x; touch PWNED; echo' does not",
    ),
    (lambda c: c.update(external_runs=[SHELL]), r"^external_runs\.0: 'x; touch PWNED; echo'"),
    (lambda c: c["runs"]["r"].update(method=SHELL), r"^runs\.r\.method: unknown method"),
    (lambda c: c["runs"]["r"].update(model=SHELL), r"^runs\.r\.model: unknown model"),
    (
        lambda c: c["partitions"]["p"].update(partitioner=SHELL),
        r"^partitions\.p\.partitioner: unknown partitioner",
    ),
    (
        lambda c: c["datasets"].update(d={"loader": SHELL}),
        r"^datasets\.d\.loader: unknown loader",
    ),
    (lambda c: c.update(reference="$(touch PWNED)"), r"^reference: '\$\(touch PWNED\)' does"),
    (lambda c: c.update(reference="`touch PWNED`"), r"^reference: '`touch PWNED`' does not"),
    # partitions that cannot be cut
    (
        lambda c: c["partitions"].update(
            s={"partitioner": "shards", "num_clients": 10, "shards_per_client": 1000}
        ),
        r"^partitions\.s\.shards_per_client: 10 clients x 1000 shards of 1\+ samples need more",
    ),  # fmt: skip
    # names that must name what exists
    (lambda c: c.update(reference="nosuchrun"), r"^reference: 'nosuchrun' names no run"),
    # a run generated per device type must not take another run's name
    (
        lambda c: c.update(
            devices={"small": {"macs": 1e6}},
            runs={
                "dfnas": {"method": "dfnas", "devices": ["small"]},
                "dfnas-small": {"method": "fedavg"},
            },
        ),
        r"^runs\.dfnas\.devices: the run it generates for 'small', 'dfnas-small', has the name",
    ),
]


@pytest.mark.parametrize("edit,message", CASES)
def test_bad_config_is_refused_at_start_naming_the_key(edit, message):
    assert_refused(_base(), edit, message)


def test_at_least_forty_cases():
    assert len(CASES) >= 40


def test_reference_may_name_a_run_or_an_external_run():
    check_config(_base() | {"reference": "r"})
    check_config(_base() | {"reference": "majority", "external_runs": ["majority"]})


def test_seeds_from_the_command_line_are_read_as_integers():
    """Snakemake's --config "seeds=[5,6]" hands the items over as strings."""
    assert check_config(_base() | {"seeds": ["5", "6"]})["seeds"] == [5, 6]
    assert_refused(_base(), lambda c: c.update(seeds=["5", "x"]), r"^seeds\.0: '5' is not of type")
