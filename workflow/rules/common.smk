# Config validation, shared helpers and input functions. Everything a rule needs is
# passed to the dfnas CLI explicitly as params, so a config change reruns only the jobs
# whose params it touches.
import json
import os
import sys

from snakemake.settings.types import DeploymentMethod

from dfnas.config import check_config
from dfnas.errors import ConfigError

try:
    _checked = check_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as exc:
    sys.exit(f"config error: {exc}")
config.clear()
config.update(_checked)

# Jobs run `python -m dfnas`. Under --sdm conda the job's environment provides that
# python; otherwise put the interpreter running Snakemake first on PATH, so a venv works
# without being activated.
if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
    shell.prefix(f'export PATH="{os.path.dirname(sys.executable)}:$PATH"; ')

DATASETS = list(config["datasets"])
PARTITIONS = list(config["partitions"])
RUNS = list(config["runs"])
SEEDS = config["seeds"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    partition="|".join(p.replace(".", r"\.") for p in PARTITIONS),
    seed=r"\d+",
    run="|".join(RUNS) or "^$",


def dataset_options(wildcards):
    return json.dumps(config["datasets"][wildcards.dataset], sort_keys=True)


def partition_spec(wildcards):
    """The partition's config entry, with the seed taken from the path."""
    spec = dict(config["partitions"][wildcards.partition], seed=int(wildcards.seed))
    return json.dumps(spec, sort_keys=True)


def run_spec(wildcards):
    """The run's config entry with the global training defaults merged in."""
    run = config["runs"][wildcards.run]
    spec = {k: v for k, v in run.items() if k != "training"}
    spec["training"] = {**config["training"], **run.get("training", {})}
    return json.dumps(spec, sort_keys=True)


def partition_json(wildcards):
    return f"{partition_dir(wildcards.dataset, wildcards.partition)}/partition.json"


def partition_dir(dataset, partition):
    seed = config["partitions"][partition]["seed"]
    return f"results/partitions/{dataset}/{partition}/seed{seed}"


def run_targets():
    return [
        f"results/{d}/{p}/{r}/seed{s}/metrics.json"
        for d in DATASETS
        for p in PARTITIONS
        for r in RUNS
        for s in SEEDS
    ]


def all_targets():
    partitions = [f"{partition_dir(d, p)}/summary.json" for d in DATASETS for p in PARTITIONS]
    return partitions + run_targets()
