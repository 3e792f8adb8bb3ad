"""One home per default: the schema repeats only what it must, and equals the home where
it does; config/README.md documents every key the schema accepts and every method option,
so neither can fall behind the code."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from conftest import REPO
from dfnas.config import load_schema
from dfnas.federated.config import AUGMENTS, LR_SCHEDULES, TrainConfig
from dfnas.methods import METHODS
from dfnas.models import MODELS
from dfnas.partition import PARTITIONERS
from dfnas.partition.partitioners import COMMON_KEYS, partitioner_params
from dfnas.partition.split import PARTITION_DEFAULTS
from dfnas.report.curves import TARGET_FRACTION

SCHEMA = load_schema()
TRAINING = SCHEMA["$defs"]["training"]["properties"]
PARTITION = SCHEMA["$defs"]["partition"]["properties"]
RUN = SCHEMA["properties"]["runs"]["additionalProperties"]
README = (REPO / "config" / "README.md").read_text()


def test_training_keys_are_trainconfigs_and_their_defaults_live_there():
    assert set(TRAINING) == {f.name for f in fields(TrainConfig)}
    assert not [k for k, v in TRAINING.items() if "default" in v], "a second home"
    assert TRAINING["lr_schedule"]["enum"] == list(LR_SCHEDULES)
    assert TRAINING["augment"]["enum"] == list(AUGMENTS)
    assert TRAINING["channels_last"]["enum"] == ["auto", True, False]


def test_partition_schema_mirrors_the_partitioners():
    defaults = {k: v["default"] for k, v in PARTITION.items() if "default" in v}
    assert defaults == PARTITION_DEFAULTS
    params = set().union(*(partitioner_params(n) for n in PARTITIONERS.names()))
    assert set(PARTITION) == params | COMMON_KEYS


def test_top_level_defaults_match_their_homes():
    assert SCHEMA["properties"]["target_fraction"]["default"] == TARGET_FRACTION


def _section(title: str) -> str:
    """The text of config/README.md under a heading, up to the next of its level."""
    level = title.split(" ")[0]
    start = README.index(f"\n{title}\n")
    nxt = re.search(rf"\n{level} ", README[start + len(title) + 2 :])
    return README[start : start + len(title) + 2 + (nxt.start() if nxt else len(README))]


@pytest.mark.parametrize(
    "title,keys",
    [
        ("## Top level", [k for k in SCHEMA["properties"]]),
        (
            "## `datasets.<name>`",
            SCHEMA["properties"]["datasets"]["additionalProperties"]["properties"],
        ),
        ("## `partitions.<name>`", PARTITION),
        ("## `training` (and `runs.<name>.training`)", TRAINING),
        ("## `runs.<name>`", [*RUN["properties"], "<stage>_stage"]),
        (
            "## `devices.<name>`",
            SCHEMA["properties"]["devices"]["additionalProperties"]["properties"],
        ),
    ],
)
def test_config_readme_documents_every_schema_key(title, keys):
    text = _section(title)
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"config/README.md, {title}: undocumented {missing}"


@pytest.mark.parametrize("name", METHODS.names())
def test_config_readme_documents_every_method_and_option(name):
    runs = _section("## `runs.<name>`")
    assert f"`{name}`" in runs.split("\n\n")[1], f"{name} missing from the method list"
    options = _section(f"### `{name}` options")
    missing = [f.name for f in fields(METHODS.get(name).options) if f"`{f.name}`" not in options]
    assert not missing, f"config/README.md, `{name}` options: undocumented {missing}"


def test_config_readme_and_schema_name_every_model():
    models = [line for line in README.splitlines() if line.startswith("| `model` |")]
    assert all(f"`{m}`" in models[0] for m in MODELS.names())
    described = load_schema()["properties"]["runs"]["additionalProperties"]["properties"]["model"]
    assert set(described["description"].split("): ")[1].replace(",", "").split()) == set(
        MODELS.names()
    )
