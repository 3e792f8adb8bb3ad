# Config validation, shared helpers and input functions. Everything a rule needs is
# passed to the dfnas CLI explicitly as params, so a config change reruns only the jobs
# whose params it touches.
#
# Layout. An experiment owns everything its config produces, under results/<experiment>/
# (runs/, tables/, figures/, latency/, logs/, benchmarks/), so configs never overwrite
# each other. Datasets and partitions are caches shared by every experiment, keyed by a
# digest of everything that shapes them, never by name alone:
#   results/datasets/<dataset>-<digest>/                 data.npz, info.json
#   results/partitions/<dataset>-<digest>/<partition>-<digest>/
import hashlib
import json
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.settings.types import DeploymentMethod

from dfnas.caches import DatasetCache, PartitionCache, repair_caches
from dfnas.errors import ConfigError, DfnasError
from dfnas.federated.config import TrainConfig
from dfnas.methods.stages import CONTRACT_FILES, STAGE_FILES, stage_folder, stage_spec
from dfnas.report import FIGURES
from dfnas.workflow_plan import load_plan

# The full check (the schema shipped in the package, then every run built once) runs on
# the first parse of a config; later parses, and every cluster job, read its result from
# .snakemake/dfnas/ (dfnas.workflow_plan) and import no torch.
try:
    PLAN = load_plan(workflow.configfiles, config)
except ConfigError as exc:
    sys.exit(f"config error: {exc}")
config.clear()
config.update(PLAN.config)
# what every registered method declares to the workflow (its stages, figures, files)
DECLARED = PLAN.methods

# Jobs run `python -m dfnas`. Under --sdm conda the job's environment provides that
# python; otherwise put the interpreter running Snakemake first on PATH, so a venv works
# without being activated.
# The prefix keeps Snakemake's own strict one (set -euo pipefail), which shell.prefix
# would otherwise replace: a failing command must fail its rule.
if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
    shell.prefix(
        f'set -euo pipefail; export PATH={shlex.quote(os.path.dirname(sys.executable))}:"$PATH"; '
    )

EXPERIMENT = config["experiment"]
DATASETS = list(config["datasets"])
PARTITIONS = list(config["partitions"])
RUNS = list(config["runs"])
SEEDS = config["seeds"]
# the runs of each registered method: its rules (methods.smk) match exactly these
RUNS_OF = {m: [r for r in RUNS if config["runs"][r]["method"] == m] for m in DECLARED}
RUN_DIR = "results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}"


def alternatives(names):
    """A wildcard regex matching exactly these names (none: matches nothing)."""
    return "|".join(n.replace(".", r"\.") for n in names) or "(?!)"


def digest(spec) -> str:
    """Ten hex digits of the canonical JSON of ``spec``: the cache key of what it shapes."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# what shapes a dataset: its loader options (downloading or not changes no byte)
DATASET_KEYS = {
    d: f"{d}-{digest({k: v for k, v in opts.items() if k != 'download'})}"
    for d, opts in config["datasets"].items()
}
# what shapes a partition: its whole spec, seed included (its folder sits in the dataset's)
PARTITION_KEYS = {p: f"{p}-{digest(spec)}" for p, spec in config["partitions"].items()}
# a shared cache whose bytes changed is rebuilt here, before any job, and only if the
# rebuild gives back the bytes the runs read (dfnas.caches); else one line and a stop:
# rerunning its job would first delete outputs that every experiment shares
try:
    repair_caches(
        [
            DatasetCache(
                Path(f"results/datasets/{k}"), d, config["datasets"][d], config["data_root"]
            )
            for d, k in DATASET_KEYS.items()
        ],
        [
            PartitionCache(
                Path(f"results/partitions/{dk}/{pk}"),
                Path(f"results/datasets/{dk}/data.npz"),
                config["partitions"][p],
            )
            for dk in DATASET_KEYS.values()
            for p, pk in PARTITION_KEYS.items()
        ],
    )
except DfnasError as exc:
    sys.exit(f"cache error: {exc}")


wildcard_constraints:
    experiment=re.escape(EXPERIMENT),
    dkey=alternatives(DATASET_KEYS.values()),
    pkey=alternatives(PARTITION_KEYS.values()),
    dataset="|".join(DATASETS),
    partition=alternatives(PARTITIONS),
    seed=r"\d+",
    run=alternatives(RUNS),
    # a latency table's search space: a run's name (before device expansion), never a path
    space=r"[A-Za-z0-9_-]+",


DATASET_OF_KEY = {key: d for d, key in DATASET_KEYS.items()}
PARTITION_OF_KEY = {key: p for p, key in PARTITION_KEYS.items()}


def dataset_name(wildcards):
    return DATASET_OF_KEY[wildcards.dkey]


def dataset_options(wildcards):
    return json.dumps(config["datasets"][DATASET_OF_KEY[wildcards.dkey]], sort_keys=True)


def partition_spec(wildcards):
    """The spec of the partition cached under ``wildcards.pkey``."""
    return json.dumps(config["partitions"][PARTITION_OF_KEY[wildcards.pkey]], sort_keys=True)


def dataset_dir(dataset):
    return f"results/datasets/{DATASET_KEYS[dataset]}"


def dataset_npz(wildcards):
    """The cached arrays of ``wildcards.dataset``: an input function for any rule."""
    return f"{dataset_dir(wildcards.dataset)}/data.npz"


def stage_dir(stages, index):
    """The folder stage ``index`` writes (wildcards unfilled): the run's, for the last."""
    return os.path.join(RUN_DIR, stage_folder(stages, index)).rstrip("/")


def stage_files(declared, index):
    """What stage ``index`` of a method (``DECLARED``) writes: the result contract
    for the last stage, metrics and history for an earlier one, and the files the
    stage's method declares it writes."""
    stages = declared.stages
    files = CONTRACT_FILES if index == len(stages) - 1 else STAGE_FILES
    return (*files, *declared.stage_writes(stages[index]))


def file_key(name):
    """A rule's input/output name for a file: model.json -> model_json."""
    return re.sub(r"\W", "_", name)


def stage_params(stages, index):
    """A param function: stage ``index``'s spec as JSON, exactly what shapes that stage."""

    def spec(wildcards):
        run = config["runs"][wildcards.run]
        return json.dumps(stage_spec(run, stages, index, config["training"]), sort_keys=True)

    return spec


# What a training, search or latency job asks a cluster scheduler for; the config's
# `resources` and a run's own override these (config/README.md, "resources").
RESOURCE_DEFAULTS = {"mem_mb": 4000, "minutes_per_round": 2.0}
# a GPU for every training job when the config asks for CUDA (the GPU profile sets
# device=cuda); `auto` asks for none, and uses one when the job lands where there is one
GPU = 1 if config["device"].startswith("cuda") else 0


def run_resources(wildcards):
    run = config["runs"].get(getattr(wildcards, "run", ""), {})
    return RESOURCE_DEFAULTS | config["resources"] | run.get("resources", {})


def stage_runtime(stages, index):
    """A resource function: minutes for stage ``index`` of a run, from its rounds."""

    def runtime(wildcards):
        spec = stage_spec(config["runs"][wildcards.run], stages, index, config["training"])
        rounds = spec["training"].get("rounds", TrainConfig.rounds)
        return int(10 + run_resources(wildcards)["minutes_per_round"] * rounds)

    return runtime


def job_mem_mb(wildcards):
    return run_resources(wildcards)["mem_mb"]


def prior_inputs(stages, index):
    """What stage ``index`` reads from the stage before it: its metrics (whose costs it
    carries on) and the files handed over."""
    if index == 0:
        return {}
    folder = stage_dir(stages, index - 1)
    files = ("metrics.json", *stages[index].receives.values())
    return {f"prior_{file_key(f)}": f"{folder}/{f}" for f in files}


# the files the workflow makes for a method (``MethodSpec.makes``), by name: each is the
# output pattern of the rule named after it and the path ``made_file`` hands the run
MADE_FILES = {"latency_table": "results/{experiment}/latency/{dataset}/{space}.json"}


def made_file(name, wildcards):
    """Where the workflow makes a file a method declares it reads (``MethodSpec.makes``;
    the job that makes it is named after it). A latency table is measured once per search
    space and dataset, on the machine that trains; a run expanded per device type shares
    its space's (``space``)."""
    space = config["runs"][wildcards.run].get("space", wildcards.run)
    return MADE_FILES[name].format(experiment=EXPERIMENT, dataset=wildcards.dataset, space=space)


def run_input_files(wildcards):
    """The files a run's method declares it reads (``MethodSpec.reads``), by name."""
    return {name: made_file(name, wildcards) for name in PLAN.run_inputs[wildcards.run]}


def input_files_arg(wildcards, input):
    """The shell's arguments for those files: ``dfnas run --input NAME=PATH`` each."""
    names = PLAN.run_inputs[wildcards.run]
    return " ".join(f"--input {shlex.quote(f'{n}={input[n]}')}" for n in names)


def space_run(wildcards):
    """A run of the search space ``wildcards.space`` (each device type's run shares its
    method and model_args)."""
    for name, run in config["runs"].items():
        if run.get("space", name) == wildcards.space:
            return run
    raise ValueError(f"no run of search space '{wildcards.space}'")


def space_method(wildcards):
    """The method whose search space it is (it makes the space's inputs)."""
    return space_run(wildcards)["method"]


def space_args(wildcards):
    """model_args of the search space, as JSON."""
    return json.dumps(space_run(wildcards).get("model_args", {}), sort_keys=True)


def partition_json(wildcards):
    """The client split of ``wildcards.partition``: an input function for any rule."""
    return f"{partition_dir(wildcards.dataset, wildcards.partition)}/partition.json"


def partition_dir(dataset, partition):
    return f"results/partitions/{DATASET_KEYS[dataset]}/{PARTITION_KEYS[partition]}"


def run_targets():
    """metrics.json of every run: registered methods and external (standalone-rule) runs."""
    return [
        f"results/{EXPERIMENT}/runs/{d}/{p}/{r}/seed{s}/metrics.json"
        for d in DATASETS
        for p in PARTITIONS
        for r in RUNS + config["external_runs"]
        for s in SEEDS
    ]


def check_external_runs():
    """Every external run is on disk or written by one of the workflow's rules. Called
    once all are defined (Snakefile), so a run nobody writes stops the workflow in one
    line, not in Snakemake's list of missing files."""
    for target in run_targets():
        run = os.path.basename(os.path.dirname(os.path.dirname(target)))
        if run not in config["external_runs"] or os.path.exists(target):
            continue
        if not any(r.is_producer(target) for r in workflow.rules):
            sys.exit(
                f"config error: external_runs: nothing writes {target}; a rule of yours in "
                "workflow/rules/baselines/*.smk must (docs/extending.md)"
            )


def exported(run):
    """Whether a run's final network is exported and checked (config key ``export``)."""
    own = config["runs"][run].get("export")
    if own is not None:
        return own
    mode = config["export"]
    return mode == "all" or (mode == "nas" and DECLARED[config["runs"][run]["method"]].searches)


EXPORTED = [r for r in RUNS if exported(r)]


def export_targets():
    """export.json of every exported run: its ONNX artifact, checked and timed."""
    return [
        f"results/{EXPERIMENT}/runs/{d}/{p}/{r}/seed{s}/export/export.json"
        for d in DATASETS
        for p in PARTITIONS
        for r in EXPORTED
        for s in SEEDS
    ]


def run_figures():
    """The per-run figures methods declare (DFNAS: its architecture), for every run."""
    return [
        f"results/{EXPERIMENT}/figures/{fig.name}/{d}/{p}/{r}/seed{s}.png"
        for r in RUNS
        for fig in DECLARED[config["runs"][r]["method"]].figures
        for d in DATASETS
        for p in PARTITIONS
        for s in SEEDS
    ]


def all_targets():
    partitions = [f"{partition_dir(d, p)}/heatmap.png" for d in DATASETS for p in PARTITIONS]
    if not run_targets():  # a partitions-only config: nothing to compare
        return partitions
    tables = [f"results/{EXPERIMENT}/tables/comparison.{ext}" for ext in ("csv", "md", "tex")]
    figures = [f"results/{EXPERIMENT}/figures/{f}.{ext}" for f in FIGURES for ext in ("png", "pdf")]
    if config["verdict"]:  # the paper's claims, read from the runs the config names
        tables += [f"results/{EXPERIMENT}/tables/verdict.{ext}" for ext in ("csv", "md")]
        figures += [f"results/{EXPERIMENT}/figures/verdict.{ext}" for ext in ("png", "pdf")]
    return partitions + run_targets() + export_targets() + tables + figures + run_figures()
