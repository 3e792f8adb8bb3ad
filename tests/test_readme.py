"""The README's and docs/'s examples, every one run or checked, so the docs cannot drift
from the code:

- each fenced Python block is a marked worked example (``<!-- method-example: PATH -->`` or
  ``baseline-example``), which tests/test_pipeline.py copies into the package and runs
  through the real workflow;
- each fenced YAML block is a config entry: with the README's methods registered, the
  default config with it added passes the check the workflow makes when it starts;
- each command of an indented block names only things that exist: make targets, config
  files (each of which tests/test_config.py checks), Snakemake profiles, ``dfnas``
  subcommands and their options.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from dfnas.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
# the README and the pages it links: one text for every check below
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README = "\n\n".join(p.read_text() for p in PAGES)
FENCED = re.findall(r"(?:<!-- (\S+)-example: (\S+) -->\s*)?```(\w*)\n(.*?)```", README, re.S)


def _commands() -> list[str]:
    """Every command line of the README's indented blocks (continuations joined)."""
    lines, out, block = README.splitlines(), [], False
    for i, line in enumerate(lines):
        if line.startswith("    ") and (block or not lines[i - 1].strip()):
            block = True
            text = line.split("  #")[0].strip()
            if out and out[-1].endswith("\\"):
                out[-1] = out[-1][:-1] + " " + text
            elif text and not text.startswith("#"):
                out.append(text)
        elif line.strip():
            block = False
    return out


COMMANDS = _commands()


def test_every_python_block_is_a_worked_example_the_pipeline_runs():
    python = [(kind, path) for kind, path, lang, _ in FENCED if lang == "python"]
    assert python, "README lost its Python examples"
    for kind, path in python:
        assert kind in ("method", "baseline") and path, "a Python block with no example marker"
    pipeline = (REPO / "tests" / "test_pipeline.py").read_text()
    assert 'readme_examples("method")' in pipeline and 'readme_examples("baseline")' in pipeline


def test_every_yaml_block_is_a_config_the_workflow_accepts():
    blocks = [code for _, _, lang, code in FENCED if lang == "yaml"]
    methods = [code for kind, _, lang, code in FENCED if lang == "python" and kind == "method"]
    assert blocks and methods
    # in a process of its own: the README's methods register themselves there
    script = """
import json, sys, yaml
from dfnas.config import check_config
blocks, methods = json.load(sys.stdin)
for code in methods:
    exec(compile(code, "README", "exec"), {})
for code in blocks:
    cfg = yaml.safe_load(open("config/config.yaml"))
    entry = yaml.safe_load(code)
    cfg["runs"] |= entry.get("runs", {})  # "and one config entry"
    cfg["external_runs"] = cfg.get("external_runs", []) + entry.get("external_runs", [])
    check_config(cfg)
print(len(blocks))
"""
    run = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([blocks, methods]),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(len(blocks))


def test_the_commands_name_what_exists():
    assert COMMANDS, "README lost its commands"
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    subparsers = build_parser()._subparsers._group_actions[0].choices
    checked = 0
    for line in COMMANDS:
        first = line.split()[0]
        tool = Path(first).name
        if first.endswith("/") or tool not in ("make", "snakemake", "dfnas", "python", "flwr"):
            continue  # a listing, or a tool of someone else's (pip, cat, flower-superlink)
        words = shlex.split(line.replace("<", "X").replace(">", "X"))
        if tool == "make":
            assert words[1] in targets, line
        elif tool == "snakemake":
            for flag, value in zip(words, words[1:], strict=False):
                if flag == "--configfile":
                    assert (REPO / value).is_file(), line
                if flag == "--profile":
                    assert (REPO / value / "config.yaml").is_file(), line
        elif tool == "dfnas" or words[:3] == ["python", "-m", "dfnas"]:
            sub = words[1] if tool == "dfnas" else words[3]
            assert sub in subparsers, line
            known = {s for a in subparsers[sub]._actions for s in a.option_strings}
            used = {w for w in words if w.startswith("--")}
            assert used <= known, (line, used - known)
        elif tool == "flwr":
            assert (REPO / words[2] / "pyproject.toml").is_file(), line
        else:
            continue
        checked += 1
    assert checked >= 8, checked


@pytest.mark.parametrize(
    "line", [c for c in COMMANDS if "--configfile" in c], ids=lambda c: c.split()[-1]
)
def test_each_configfile_a_command_names_is_shipped(line):
    path = shlex.split(line)[shlex.split(line).index("--configfile") + 1]
    assert (REPO / path).resolve().is_relative_to(REPO / "config"), line


def test_every_relative_link_of_the_pages_resolves():
    """A page's links to files and to other pages lead somewhere (docs moved out of the
    README keep their links working)."""
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if (
                not target.startswith(("http://", "https://"))
                and not (page.parent / target).exists()
            ):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, broken


def test_generated_tables_in_the_pages_match_their_files():
    """A table included from a generated file (``<!-- include: PATH -->`` ... ``<!--
    /include -->``: scripts/archive.py tables rewrites them) is that file's text, byte
    for byte: the docs show what the repository holds, never a number pasted by hand."""
    from dfnas.report.archive import INCLUDE, stale_includes

    included = [m.group(2) for p in PAGES for m in INCLUDE.finditer(p.read_text())]
    assert all((REPO / name).is_file() for name in included), included
    stale = {p.name: s for p in PAGES if (s := stale_includes(p, REPO))}
    assert not stale, f"run scripts/archive.py tables: {stale}"
