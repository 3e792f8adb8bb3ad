"""The ``dfnas`` command line: one subcommand per workflow stage.

Rules pass every value explicitly (JSON for structured settings), so Snakemake sees each
one as a param and reruns exactly the jobs a config change touches, and every stage can be
run and tested without Snakemake::

    python -m dfnas dataset --name digits --out results/datasets/digits-<digest>
    python -m dfnas partition --data results/datasets/digits-<digest>/data.npz \\
        --spec '{"partitioner": "iid", "num_clients": 10, "seed": 42}' \\
        --out results/partitions/digits-<digest>/iid-<digest>
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from dfnas.errors import CacheError, DfnasError

COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {}


def command(func: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    COMMANDS[func.__name__.replace("_", "-")] = func
    return func


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


@command
def dataset(args: argparse.Namespace) -> None:
    """Load a dataset once, verify it, and cache it as data.npz + info.json (with the
    digest the workflow checks the cache against: dfnas.caches)."""
    from dfnas.caches import build_dataset

    ds = build_dataset(args.name, args.options, args.data_root, Path(args.out))
    print(f"{ds.name}: {len(ds.y_train)} train / {len(ds.y_test)} test, shape {ds.in_shape}")


@command
def partition(args: argparse.Namespace) -> None:
    """Split the cached train set over clients and write the partition artifacts."""
    from dfnas.data import load_cached
    from dfnas.partition.stage import write_partition

    ds = load_cached(args.data)
    part = write_partition(ds, args.spec, args.out)
    sizes = [len(t) for t in part.train]
    print(f"{part.num_clients} clients, local train sizes {min(sizes)}..{max(sizes)} -> {args.out}")


@command
def run(args: argparse.Namespace) -> None:
    """Run one federated method on one partition and write the result contract."""
    from dfnas.federated.settings import RunSettings, parse_inputs
    from dfnas.run import run_method

    settings = RunSettings(
        device=args.device,
        threads=args.threads,
        client_workers=args.client_workers,
        inputs=parse_inputs(args.input),
    )
    m = run_method(
        args.spec,
        args.data,
        args.partition,
        args.seed,
        args.out,
        name=args.name,
        stage=args.stage,
        prior=args.prior,
        settings=settings,
    )
    print(
        f"{m['run']} ({m['stage']}): accuracy {m['accuracy']:.4f}, "
        f"{m['train_flops'] / 1e12:.3f} TFLOPs, "
        f"{(m['bytes_down'] + m['bytes_up']) / 1e6:.1f} MB, {m['wall_seconds']:.1f} s -> {args.out}"
    )
    for warning in m.get("search_warnings", []):
        print(f"WARNING: not a search result: {warning}")


@command
def flower_prepare(args: argparse.Namespace) -> None:
    """Cut each client's shard and write the run config for the Flower app (flower/)."""
    from dfnas.deploy.shards import write_shards

    shards = write_shards(args.data, args.partition, args.shards)
    values = {
        "spec": json.dumps(args.spec, sort_keys=True),
        "data": str(Path(args.data).resolve()),
        "partition": str(Path(args.partition).resolve()),
        "seed": args.seed,
        "out": str(Path(args.out).resolve()),
        "name": args.name or args.spec["method"],
        "threads": args.threads,
    }
    config = Path(args.shards) / f"{values['name']}.run_config.toml"
    # TOML's basic strings take JSON's escapes: json.dumps writes a valid TOML value
    config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    print(f"{len(shards)} client shards and {config} written; start one SuperNode per client:")
    node = f'partition-id=K shard="{shards[0].parent}/clientK.npz"'
    print(f"  flower-supernode --node-config '{node}' --superlink <address> ...")
    print(f"then: flwr run flower <superlink connection> --run-config {config}")


@command
def latency(args: argparse.Namespace) -> None:
    """Measure each candidate block's latency on this machine (a device budget's table),
    as the method whose search space it is makes it (``MethodSpec.makes``)."""
    import torch

    from dfnas.data import load_cached
    from dfnas.federated.loop import resolve_device
    from dfnas.io import write_json
    from dfnas.methods import METHODS

    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_cached(args.data)
    declared = METHODS.get(args.method)
    device = resolve_device(args.device)
    table = declared.make_input(
        "latency_table", ds.in_shape, ds.num_classes, args.model_args, device
    )
    write_json(args.out, table)
    fastest = table["fixed_ms"] + sum(min(row) for row in table["op_ms"])
    print(f"{len(table['op_ms'])} layers measured; fastest child {fastest:.3f} ms -> {args.out}")


def _share(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], got {text}")
    return value


@command
def collect(args: argparse.Namespace) -> None:
    """Gather runs (their metrics.json) into the comparison tables."""
    from dfnas.report.collect import comparison, load_runs, unhealthy_searches, write_tables

    runs = load_runs(args.metrics)
    for line in unhealthy_searches(runs):
        print(f"WARNING: not a search result: {line}")
    from dfnas.report.curves import TARGET_FRACTION

    fraction = args.target_fraction if args.target_fraction is not None else TARGET_FRACTION
    groups = json.loads(args.arch_groups) if args.arch_groups else None
    table = comparison(runs, args.reference, fraction, args.target_accuracy, groups)
    out = Path(args.out_dir)
    write_tables(table, out / "comparison.csv", out / "comparison.md", out / "comparison.tex")
    print(f"{len(table)} rows (reference: {table.attrs['reference']}) -> {out}/comparison.*")


@command
def export(args: argparse.Namespace) -> None:
    """Export a run's final network to ONNX, check it in onnxruntime, time it."""
    import torch

    from dfnas.deploy.export import export_run
    from dfnas.io import write_json

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    report = export_run(args.run_dir, args.data, out.parent)
    write_json(out, report)
    print(
        f"{out.parent / report['file']}: {report['bytes'] / 1e3:.1f} kB, top-1 agreement "
        f"{report['top1_agreement']:.4%} on {report['test_samples']} test images, largest "
        f"logit difference {report['max_logit_diff']:.2e}, {report['latency_ms']:.3f} ms "
        "per image (onnxruntime, 1 thread)"
    )


@command
def verdict(args: argparse.Namespace) -> None:
    """The paper's claims, one per row, read from the runs the config's verdict names."""
    from dfnas.report.collect import load_runs
    from dfnas.report.verdict import spec_from_config, verdict_table, write_verdict
    from dfnas.report.verdict_figure import verdict_figure

    spec = spec_from_config(json.loads(args.spec), json.loads(args.arch_groups))
    tables = verdict_table(load_runs(args.metrics), spec)
    write_verdict(tables, Path(args.csv), Path(args.md))
    verdict_figure(tables, Path(args.figure))
    for t in tables:
        for r in t.to_dict("records"):
            print(
                f"{r['dataset']}/{r['partition']}: {r['claim']}: {r['verdict']}"
                f" ({r['paired difference']})"
            )
    print(f"-> {args.csv}, {args.md}, {args.figure}.png")


@command
def figures(args: argparse.Namespace) -> None:
    """Draw the comparison figures from runs and the comparison table."""
    import pandas as pd

    from dfnas.report import FIGURES
    from dfnas.report import figures as fig
    from dfnas.report.collect import load_runs

    runs = load_runs(args.metrics)
    out = Path(args.out_dir)
    table = pd.read_csv(args.table)
    for name in FIGURES:
        fig.DRAW[name](runs, table, out / name)
    print(f"figures for {len(runs)} runs -> {out}")


@command
def run_figure(args: argparse.Namespace) -> None:
    """Draw a figure a method declares per run (DFNAS: its alpha evolution and child)."""
    from dfnas.errors import ConfigError
    from dfnas.methods import METHODS

    declared = {f.name: f for f in METHODS.get(args.method).figures}
    if args.figure not in declared:
        known = ", ".join(declared) or "none"
        raise ConfigError(f"figure: method '{args.method}' declares {known}, not '{args.figure}'")
    declared[args.figure].render(args.source, args.out)
    print(f"-> {args.out}.png, {args.out}.pdf")


@command
def check_config(args: argparse.Namespace) -> None:
    """Validate a workflow config file, as the workflow does when it starts."""
    import yaml

    from dfnas.config import check_config as check

    with open(args.configfile) as fh:
        check(yaml.safe_load(fh) or {})
    print(f"{args.configfile}: ok")


def _run_args(p: argparse.ArgumentParser) -> None:
    """What names one run, for `run` and `flower-prepare` alike."""
    p.add_argument("--spec", type=_json_arg, required=True, help="run spec (JSON)")
    p.add_argument("--name", default=None, help="run name (config key)")
    p.add_argument("--data", required=True, help="data.npz written by the dataset stage")
    p.add_argument("--partition", required=True, help="partition.json")
    p.add_argument("--seed", type=int, required=True, help="training seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfnas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_data_commands, _run_commands, _report_commands):
        add(sub)
    return parser


def _data_commands(sub: argparse._SubParsersAction) -> None:
    """What the pipeline's first stages and the device budgets run."""
    p = sub.add_parser("dataset", help=dataset.__doc__)
    p.add_argument("--name", required=True, help="dataset name (config key)")
    p.add_argument("--options", type=_json_arg, default={}, help="loader options (JSON)")
    p.add_argument("--data-root", default="data")
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser("partition", help=partition.__doc__)
    p.add_argument("--data", required=True, help="data.npz written by the dataset stage")
    p.add_argument("--spec", type=_json_arg, required=True, help="partition spec (JSON)")
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser("latency", help=latency.__doc__)
    p.add_argument("--data", required=True, help="data.npz (gives the input shape)")
    p.add_argument("--method", default="dfnas", help="the method whose search space it is")
    p.add_argument("--model-args", type=_json_arg, default={}, help="supernet args (JSON)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="output JSON")

    p = sub.add_parser("check-config", help=check_config.__doc__)
    p.add_argument("configfile")


def _run_commands(sub: argparse._SubParsersAction) -> None:
    """A run (one stage of one method), its deployment on Flower, and its export."""
    p = sub.add_parser("run", help=run.__doc__)
    _run_args(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--client-workers",
        type=int,
        default=1,
        help="processes that train a round's clients at once, sharing the threads (CPU)",
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a file the method declares it reads (MethodSpec.reads), e.g. latency_table=...",
    )
    p.add_argument("--stage", default=None, help="the method's stage to run (default: first)")
    p.add_argument("--prior", default=None, help="folder the stage before this one wrote")
    p.add_argument("--out", required=True, help="output folder")

    p = sub.add_parser("flower-prepare", help=flower_prepare.__doc__)
    _run_args(p)
    p.add_argument("--threads", type=int, default=0, help="torch threads, server and clients")
    p.add_argument("--out", required=True, help="the run's result folder (on the server)")
    p.add_argument(
        "--shards", required=True, help="folder for client<k>.npz and <name>.run_config.toml"
    )

    p = sub.add_parser("export", help=export.__doc__)
    p.add_argument("--run-dir", required=True, help="a run's folder (model.pt, model.json)")
    p.add_argument("--data", required=True, help="data.npz written by the dataset stage")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", required=True, help="export.json (model.onnx goes beside it)")


def _report_commands(sub: argparse._SubParsersAction) -> None:
    """Tables, the verdict and figures, from the runs' result contracts."""
    p = sub.add_parser("collect", help=collect.__doc__)
    p.add_argument("metrics", nargs="+", help="metrics.json files of the runs")
    p.add_argument(
        "--reference",
        default=None,
        help="run the cost ratios divide by (absent or empty: the first one-stage search run)",
    )
    p.add_argument(
        "--arch-groups",
        default=None,
        help="JSON: group -> its runs, one per random architecture (summarised as a distribution)",
    )
    p.add_argument(
        "--target-fraction",
        type=_share,
        default=None,
        help="target accuracy as a share of the best final accuracy of each setting",
    )
    p.add_argument("--target-accuracy", type=_share, default=None, help="absolute target")
    p.add_argument("--out-dir", required=True)

    p = sub.add_parser("verdict", help=verdict.__doc__)
    p.add_argument("metrics", nargs="+", help="metrics.json of every run")
    p.add_argument("--spec", required=True, help="the config's verdict block (JSON)")
    p.add_argument("--arch-groups", default="{}", help="run -> its random-architecture runs")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--figure", required=True, help="figure path without extension")

    p = sub.add_parser("figures", help=figures.__doc__)
    p.add_argument("metrics", nargs="+", help="metrics.json files of the runs")
    p.add_argument("--table", required=True, help="comparison.csv")
    p.add_argument("--out-dir", required=True)

    p = sub.add_parser("run-figure", help=run_figure.__doc__)
    p.add_argument("--method", required=True, help="the registered method declaring it")
    p.add_argument("--figure", required=True, help="the figure's name")
    p.add_argument("--source", required=True, help="the run's file it is drawn from")
    p.add_argument("--out", required=True, help="output path without extension")


def main(argv: list[str] | None = None) -> int:
    # logs are files under Snakemake: flush each progress line as it is written
    sys.stdout.reconfigure(line_buffering=True)
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except DfnasError as exc:
        if isinstance(exc, CacheError):  # the workflow's next start checks it again
            from dfnas.caches import forget

            forget(exc.path)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
