"""An experiment's runs kept in the repository, so its tables outlive the machine that ran
them, a rerun can be checked against them, and seeds can be added later.

Layout, mirroring ``results/<experiment>/``::

    archive/<experiment>/
        config.yaml        the config of the first runs added; later ones must match it but
                           for ``seeds``
        runs/<dataset>/<partition>/<run>/seed<k>/
                           every small file of the run's folder (metrics.json with its
                           provenance, history.csv, model.json, config.json, the method's own
                           files, export/export.json, an earlier stage's folder) and
                           left_out.json: the digest of each file not kept (the weights:
                           one SHA-256 over their tensors, report.compare.tensor_digest)
        equivalent.json    code versions shown to compute what an archived one computed
        tables/, figures/  regenerated from runs/ alone (``regenerate``)

A table mixes code versions only where a rerun proved them equal: ``compare(...,
record=True)`` on a rerun of archived runs, all bit for bit equal, records the rerun's code
version as the same as the archived one's. Without that, ``regenerate`` refuses the mix
and names the versions, so a seed run next month on changed code never joins this
month's seeds silently. CPU kinds may mix (seeds are independent draws either way); the
comparison table lists every machine its numbers came from.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from dfnas.errors import DfnasError
from dfnas.io import read_json, write_json
from dfnas.report.compare import LEFT_OUT, compare_run, tensor_digest

EQUIVALENT = "equivalent.json"
# weights, exported networks and checkpoints are large or rebuildable; their digests stay
NOT_KEPT = re.compile(r"\.(pt|onnx|npz)$|checkpoint")
# anything larger is left out too (and digested), so no run bloats the repository
MAX_KEPT_BYTES = 2_000_000
COMMIT = re.compile(r"^[0-9a-f]{40}$")
RUN_GLOB = "runs/*/*/*/seed*/metrics.json"


def archived_runs(root: Path) -> list[Path]:
    """Every complete run folder under an experiment's folder (metrics.json written last)."""
    return sorted(p.parent for p in root.glob(RUN_GLOB))


def _config(path: Path) -> dict:
    from dfnas.config import check_config

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DfnasError(f"{path}: not a readable config ({exc})") from None
    return check_config(raw)


def _file_digest(path: Path) -> dict[str, Any]:
    if path.suffix == ".pt":
        return tensor_digest(path)
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}


def _copy_run(src: Path, dest: Path) -> None:
    """The run's small files into ``dest``, whole or not at all (a temporary folder renamed
    into place), with the digest of every file left out."""
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    left_out = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src)
        if NOT_KEPT.search(path.name) or path.stat().st_size > MAX_KEPT_BYTES:
            left_out[str(rel)] = _file_digest(path)
            continue
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, tmp / rel)
    write_json(tmp / LEFT_OUT, left_out)
    tmp.rename(dest)


def _check_same_config(archive: Path, config_path: Path, config: dict) -> None:
    """A later add must come from the archive's config, seeds aside (``config``: the one at
    ``config_path``, checked already)."""
    ours = archive / "config.yaml"
    if not ours.exists():
        archive.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config_path, ours)
        return
    a, b = _config(ours), config
    differing = sorted(k for k in set(a) | set(b) if k != "seeds" and a.get(k) != b.get(k))
    if differing:
        raise DfnasError(
            f"{config_path}: differs from {ours} in {', '.join(differing)} (only seeds may "
            "differ: runs of another config go into an archive of their own)"
        )


def add(
    results: Path, archive: Path, config_path: Path, seeds: list[int] | None = None
) -> dict[str, int]:
    """Archive the complete runs of ``results`` (one experiment's folder) that its config
    names, of ``seeds`` (default: the config's). A run already archived is compared, never
    overwritten; one from uncommitted code is refused (nobody could check it out again).
    Returns counts by outcome."""
    config = _config(config_path)
    seeds = config["seeds"] if seeds is None else seeds
    if config["experiment"] != archive.name:
        raise DfnasError(
            f"{config_path}: experiment '{config['experiment']}' but the archive is "
            f"'{archive.name}'; archive/<experiment> keeps one experiment"
        )
    _check_same_config(archive, config_path, config)
    names = set(config["runs"]) | set(config["external_runs"])
    counts = {"added": 0, "equal": 0, "differs": 0, "refused": 0}
    for src in archived_runs(results):
        if src.parent.name not in names or int(src.name.removeprefix("seed")) not in seeds:
            continue
        rel = src.relative_to(results)
        version = read_json(src / "metrics.json").get("code_version", "unrecorded")
        if not COMMIT.match(version):
            why = (
                "records no code version (a baseline rule can write code_version, the "
                "commit it ran, into metrics.json)"
                if version == "unrecorded"
                else f"code version '{version}' is not a commit (uncommitted changes?)"
            )
            print(f"refused {rel}: {why}")
            counts["refused"] += 1
            continue
        dest = archive / rel
        if dest.exists():
            diffs = compare_run(src, dest)
            outcome = "differs" if diffs else "equal"
            print(f"{'DIFFERS' if diffs else 'equal  '} {rel} {'; '.join(diffs)}")
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _copy_run(src, dest)
            outcome = "added"
            print(f"added   {rel}")
        counts[outcome] += 1
    return counts


def _root(version: str, same_as: dict[str, dict]) -> str:
    seen = set()
    while version in same_as and version not in seen:
        seen.add(version)
        version = same_as[version]["same_as"]
    return version


def check_code_versions(archive: Path, runs: list[Path]) -> list[str]:
    """The code versions of ``runs``; refuses versions no rerun proved equal."""
    eq_path = archive / EQUIVALENT
    same_as = read_json(eq_path) if eq_path.exists() else {}
    versions: dict[str, list[str]] = {}
    for run in runs:
        v = read_json(run / "metrics.json").get("code_version", "unrecorded")
        versions.setdefault(v, []).append(str(run.relative_to(archive)))
    roots = {_root(v, same_as) for v in versions}
    if len(roots) > 1:
        listed = "; ".join(f"{v[:12]} ({len(r)} runs, e.g. {r[0]})" for v, r in versions.items())
        raise DfnasError(
            f"{archive}: runs from code versions no rerun proved equal: {listed}. Rerun one "
            "archived run on the newer code and `scripts/archive.py compare --record` it"
        )
    return sorted(versions)


def compare(results: Path, archive: Path, record: bool = False) -> int:
    """A rerun against the archive, run by run; returns how many differ. With ``record``,
    runs all equal on other code record that code as equivalent (``EQUIVALENT``)."""
    pairs = [
        (src, archive / src.relative_to(results))
        for src in archived_runs(results)
        if (archive / src.relative_to(results) / "metrics.json").exists()
    ]
    if not pairs:
        raise DfnasError(f"{results}: no run that {archive} also holds")
    differing = 0
    for src, dest in pairs:
        diffs = compare_run(src, dest)
        differing += bool(diffs)
        print(f"{'DIFFERS' if diffs else 'same   '} {src.relative_to(results)} {'; '.join(diffs)}")
    print(f"{len(pairs)} runs x seeds compared with {archive}, {differing} differ")
    if record and not differing:
        _record_equivalence(archive, pairs)
    return differing


def _record_equivalence(archive: Path, pairs: list[tuple[Path, Path]]) -> None:
    eq_path = archive / EQUIVALENT
    same_as = read_json(eq_path) if eq_path.exists() else {}
    for src, dest in pairs:
        new, old = (read_json(p / "metrics.json") for p in (src, dest))
        a, b = new.get("code_version", ""), old.get("code_version", "")
        if not COMMIT.match(a):
            print(f"not recorded: code version '{a}' is not a commit (uncommitted changes?)")
            continue
        if a != b and a not in same_as:
            same_as[a] = {
                "same_as": b,
                "shown_by": str(dest.relative_to(archive)),
                "cpu": new.get("cpu", "?"),
                "cpu_capability": new.get("cpu_capability", "?"),
                "torch_version": new.get("torch_version", "?"),
            }
            print(
                f"recorded: code {a[:12]} computes what {b[:12]} did ({dest.relative_to(archive)})"
            )
    write_json(eq_path, same_as)


def _draw_run_figures(runs: Any, out: Path) -> None:
    """The per-run figures methods declare, drawn from the archived source files."""
    from dfnas.methods import METHODS

    for r in runs.itertuples():
        if r.method not in METHODS.names():
            continue
        for fig in METHODS.get(r.method).figures:
            stem = out / fig.name / r.dataset / r.partition / r.run / f"seed{r.seed}"
            stem.parent.mkdir(parents=True, exist_ok=True)
            fig.render(Path(r.run_dir) / fig.source, stem)


def regenerate(archive: Path) -> list[Path]:
    """The experiment's comparison, per-seed and verdict tables and its figures, from the
    archive alone, with the workflow's own functions and the archived config's settings."""
    import pandas as pd

    from dfnas.report import FIGURES
    from dfnas.report.collect import comparison, load_runs, write_tables
    from dfnas.report.figures import DRAW
    from dfnas.report.per_seed import per_seed, write_per_seed
    from dfnas.report.verdict import spec_from_config, verdict_table, write_verdict
    from dfnas.report.verdict_figure import verdict_figure

    config = _config(archive / "config.yaml")
    runs_dirs = archived_runs(archive)
    if not runs_dirs:
        raise DfnasError(f"{archive}: no archived run (runs/*/*/*/seed*/metrics.json)")
    check_code_versions(archive, runs_dirs)
    runs = load_runs([d / "metrics.json" for d in runs_dirs])
    tables, figures = archive / "tables", archive / "figures"
    table = comparison(
        runs,
        config["reference"],
        config["target_fraction"],
        config["target_accuracy"],
        config["arch_groups"],
    )
    written = [tables / f"comparison.{ext}" for ext in ("csv", "md", "tex")]
    write_tables(table, *written)
    seeds = [tables / "per_seed.csv", tables / "per_seed.md"]
    write_per_seed(per_seed(runs, config["arch_groups"]), *seeds)
    written += seeds
    if config["verdict"]:
        verdicts = verdict_table(runs, spec_from_config(config["verdict"], config["arch_groups"]))
        write_verdict(verdicts, tables / "verdict.csv", tables / "verdict.md")
        verdict_figure(verdicts, figures / "verdict")
        written += [tables / "verdict.csv", tables / "verdict.md", figures / "verdict.png"]
    frame = pd.read_csv(tables / "comparison.csv")
    for name in FIGURES:
        DRAW[name](runs, frame, figures / name)
    _draw_run_figures(runs, figures)
    return written


# a generated file's text included in a page of the docs, between these two lines
INCLUDE = re.compile(r"(<!-- include: (\S+) -->\n)(.*?)(<!-- /include -->)", re.S)


def update_includes(page: Path, root: Path, under: list[Path]) -> list[str]:
    """Rewrite the include blocks of ``page`` that name a file (relative to ``root``) in
    one of the folders ``under``; returns the names of the blocks that changed."""
    text, changed = page.read_text(), []
    folders = [f.resolve() for f in under]

    def fill(m: re.Match) -> str:
        source = root / m.group(2)
        if not any(source.resolve().is_relative_to(f) for f in folders):
            return m.group(0)
        if not source.exists():
            raise DfnasError(f"{page}: includes {m.group(2)}, which does not exist")
        body = source.read_text()
        body = body if body.endswith("\n") else body + "\n"
        if body != m.group(3):
            changed.append(m.group(2))
        return m.group(1) + body + m.group(4)

    new = INCLUDE.sub(fill, text)
    if new != text:
        page.write_text(new)
    return changed


def stale_includes(page: Path, root: Path) -> list[str]:
    """The include blocks of ``page`` whose text is not their file's (a test's check)."""
    return [
        m.group(2)
        for m in INCLUDE.finditer(page.read_text())
        if not (root / m.group(2)).exists() or (root / m.group(2)).read_text() != m.group(3)
    ]
