"""The engine's shape, checked: the federated engine imports nothing from the methods
built on it (not even for type hints), every registered method satisfies the engine's
protocol with at most the 13 hooks ``methods.base`` lists, no module in src/ is over 400
lines and no function over 80, the package has no import cycle, and no part of it imports
a part above it (``LAYERS``), wherever the import stands."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dfnas.federated.protocol import ClientSide, ServerSide
from dfnas.methods import METHODS
from dfnas.methods.base import FedMethod

SRC = Path(__file__).resolve().parent.parent / "src" / "dfnas"


def _module(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every dfnas module a file imports, at top level or inside TYPE_CHECKING/functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dfnas"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dfnas")}
    return found


FILES = sorted(SRC.rglob("*.py"))
MODULES = {_module(p) for p in FILES}


def test_the_engine_imports_nothing_from_the_methods():
    for path in (SRC / "federated").glob("*.py"):
        upward = {m for m in _imports(path) if m.startswith("dfnas.methods")}
        assert not upward, f"{path.name} imports {sorted(upward)}"


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_speaks_the_engine_protocol(name):
    method = METHODS.get(name).implementation
    assert issubclass(method, FedMethod)
    for side in (ClientSide, ServerSide):
        hooks = [n for n, v in vars(side).items() if callable(v) and not n.startswith("_")]
        assert hooks
        missing = [h for h in hooks if not callable(getattr(method, h, None))]
        assert not missing, f"{name} lacks {missing}"


def test_no_function_is_over_80_lines():
    long = {
        f"{_module(p)}.{node.name}": node.end_lineno - node.lineno + 1
        for p in FILES
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 80
    }
    assert not long, long


def test_a_method_overrides_only_the_listed_hooks():
    """The hook list at the top of ``methods.base`` is the whole interface: at most 13
    hooks, each one of ``FedMethod``'s, every public method of ``FedMethod`` a listed hook
    or one of its helpers, and every shipped method overriding only hooks and values."""
    import re

    import dfnas.methods.base as base

    listed = base.__doc__.split("may override")[1].split("and two values")[0]
    hooks = set(re.findall(r"^    (\w+)\(", listed, re.M))
    assert 10 <= len(hooks) <= 13, sorted(hooks)
    helpers = {"clip", "model_spec", "state_dict", "load_state_dict", "can_batch_clients"}
    public = {n for n, v in vars(FedMethod).items() if callable(v) and not n.startswith("_")}
    assert public == hooks | helpers, public ^ (hooks | helpers)
    values = {"server_state", "validation_fraction"}
    for name in METHODS.names():
        cls = METHODS.get(name).implementation
        for klass in cls.__mro__[: cls.__mro__.index(FedMethod)]:
            over = {n for n in vars(klass) if n in vars(FedMethod) and not n.startswith("_")}
            assert over <= hooks | values, (name, klass.__name__, over - hooks - values)


def test_no_module_is_over_400_lines():
    long = {_module(p): n for p in FILES if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def _module_imports(path: Path) -> set[str]:
    """The dfnas modules a file imports anywhere (top level, functions, TYPE_CHECKING):
    ``from dfnas.a import b`` counts as dfnas.a.b where b is a module, else dfnas.a."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dfnas"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & MODULES
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dfnas")}
    return found


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (module -> modules it imports), or None."""
    done, stack = set(), []

    def visit(m: str) -> list[str] | None:
        if m in stack:
            return [*stack[stack.index(m) :], m]
        if m in done:
            return None
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if cycle := visit(d):
                return cycle
        stack.pop()
        done.add(m)
        return None

    for m in sorted(graph):
        if cycle := visit(m):
            return cycle
    return None


def test_no_import_cycle_anywhere():
    """No module imports, by any path and from anywhere in it (a function's late import,
    a type-only import), a module that imports it back: a late import hides a cycle from
    the interpreter, not from a reader."""
    graph = {}
    for path in FILES:
        me = _module(path)
        # importing one's own package (or its parent) is how a package's modules meet
        graph[me] = {
            d
            for d in _module_imports(path)
            if d in MODULES and d != me and not me.startswith(d + ".")
        }
    cycle = import_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle_inside_a_function(tmp_path):
    """The check itself: a cycle closed only by a function's import, and by a type-only
    import, is found."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from dfnas.federated import config\n")
    b.write_text("def f():\n    from dfnas.federated import context\n")
    assert "dfnas.federated.config" in _module_imports(a)
    assert "dfnas.federated.context" in _module_imports(b)
    graph = {"x": {"y"}, "y": {"z"}, "z": {"x"}}
    assert import_cycle(graph) == ["x", "y", "z", "x"]
    assert import_cycle({"x": {"y"}, "y": set()}) is None


# The package's parts, lowest first: a part imports only parts of lower layers (and its own
# modules). The engine (federated) knows no model or search; the methods stand on both;
# a run, the config check and the report read methods; the commands stand on everything.
LAYERS = [
    {"errors", "registry", "machine"},
    {"io"},
    {"results", "plotting", "data", "cost"},
    {"partition", "models"},
    {"search", "federated"},
    {"methods"},
    {"config_checks", "run"},
    {"config"},
    {"report", "deploy", "caches", "workflow_plan"},
    {"cli", "__main__"},
]
LAYER_OF = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def _part(module: str) -> str:
    """``dfnas.search.darts_supernet`` -> ``search``; the package itself -> ``dfnas``."""
    return module.split(".")[1] if "." in module else module


def upward_imports(files: list[Path], root: Path = SRC) -> list[str]:
    """``file -> module`` for every import of a part in a higher layer than the file's."""
    found = []
    for path in files:
        me = _module(path, root)
        for dep in _module_imports(path):
            them = _part(dep)
            if them != _part(me) and them in LAYER_OF and LAYER_OF[them] > LAYER_OF[_part(me)]:
                found.append(f"{me} -> {dep}")
    return sorted(found)


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(m) for m in MODULES} - {"dfnas"}
    assert parts == set(LAYER_OF), parts ^ set(LAYER_OF)


def test_no_part_imports_a_part_above_it():
    """Not at top level, not inside a function, not for type hints only."""
    assert upward_imports(FILES) == []


def test_the_layer_check_finds_an_upward_import_inside_a_function(tmp_path):
    models = tmp_path / "dfnas" / "models"
    models.mkdir(parents=True)
    (models / "net.py").write_text(
        "def build():\n    from dfnas.search.darts_supernet import DartsSearchNet\n"
    )
    found = upward_imports([models / "net.py"], root=tmp_path / "dfnas")
    assert found == ["dfnas.models.net -> dfnas.search.darts_supernet"]
