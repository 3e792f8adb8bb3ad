"""The verdicts' runs kept in the repository (archive/<experiment>/; dfnas.report.archive).

    # after a run of the workflow: its complete runs go in (a run already there must be equal)
    .venv/bin/python scripts/archive.py add results/verdict_cifar10_16 \\
        --config config/verdict/cifar10_16.yaml
    # tables, verdict and figures from the archive alone, and the docs' included copies
    .venv/bin/python scripts/archive.py tables archive/verdict_cifar10_16
    # a rerun against the archive (same CPU kind): equal, or which numbers differ;
    # --record lets a newer code version's seeds join the archive's tables
    .venv/bin/python scripts/archive.py compare results/verdict_cifar10_16 \\
        archive/verdict_cifar10_16

More seeds later (seeds 0-4 are not rerun; docs/verdict.md, "The archive")::

    .venv/bin/snakemake --cores all --configfile config/verdict/cifar10_16.yaml \\
        --config "seeds=[5,6]"
    .venv/bin/python scripts/archive.py add results/verdict_cifar10_16 \\
        --config config/verdict/cifar10_16.yaml --seeds 5 6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfnas.errors import DfnasError
from dfnas.report import archive

ROOT = Path(__file__).resolve().parents[1]
# pages whose include blocks show generated tables
PAGES = ("README.md", "docs/*.md")


def pages() -> list[Path]:
    return sorted(p for pattern in PAGES for p in ROOT.glob(pattern))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("add", help="archive an experiment's complete runs")
    a.add_argument("results", type=Path, help="results/<experiment>")
    a.add_argument("--config", type=Path, required=True, help="the config the runs came from")
    a.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the config's")
    a.add_argument("--archive", type=Path, default=None, help="default: archive/<experiment>")
    t = sub.add_parser("tables", help="tables and figures from the archive alone")
    t.add_argument("archives", type=Path, nargs="+", help="archive/<experiment> folders")
    c = sub.add_parser("compare", help="a rerun against the archive")
    c.add_argument("results", type=Path)
    c.add_argument("archive", type=Path)
    c.add_argument("--record", action="store_true", help="all equal: record the code version")
    args = p.parse_args(argv)
    try:
        if args.command == "add":
            dest = args.archive or ROOT / "archive" / args.results.name
            counts = archive.add(args.results, dest, args.config, args.seeds)
            print(", ".join(f"{n} {k}" for k, n in counts.items()) + f" -> {dest}")
            return int(counts["differs"] > 0 or counts["refused"] > 0)
        if args.command == "tables":
            for folder in args.archives:
                for path in archive.regenerate(folder):
                    print(f"-> {path}")
            for page in pages():
                for name in archive.update_includes(page, ROOT, args.archives):
                    print(f"{page.relative_to(ROOT)}: updated {name}")
            return 0
        return int(archive.compare(args.results, args.archive, args.record) > 0)
    except DfnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
