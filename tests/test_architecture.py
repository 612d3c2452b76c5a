"""The house rules, checked on the code itself.

The rooms and which may import which are declared once, as the import-linter contract in
pyproject.toml (``[tool.importlinter]``); these tests run it and check what it cannot say:
no circles between modules, no private names borrowed, no module over ~600 lines, and every
package saying in its docstring what it holds and what it may import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "newsletter"
MAX_LINES = 600


def _contract_layers() -> list[list[str]]:
    """The rooms, highest first, each a list of sibling packages (short names)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return [
        [name.strip().removeprefix("newsletter.") for name in layer.replace(":", "|").split("|")]
        for layer in contract["layers"]
    ]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a relative ``from ... import`` names."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported newsletter module, names imported from it)], at any depth.

    Read from the source, so imports inside functions (deferred for start-up speed) count too.
    ``from .pkg import module`` is an edge to the module, not to the package.
    """
    graph: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(module, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node)
                if not target.startswith("newsletter"):
                    continue
                folder = ROOT.joinpath(*target.split("."))
                modules = [a.name for a in node.names if (folder / f"{a.name}.py").is_file()]
                if modules:
                    edges.extend((f"{target}.{name}", []) for name in modules)
                else:
                    edges.append((target, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                edges.extend((a.name, []) for a in node.names if a.name.startswith("newsletter."))
    return graph


def test_the_declared_rooms_are_kept() -> None:
    # import-linter reads every import, deferred ones inside functions too.
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
         "lint_imports_command()", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_is_a_room() -> None:
    rooms = {name for layer in _contract_layers() for name in layer}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == rooms, "give each package a room in pyproject.toml [tool.importlinter]"
    loose = sorted(
        p.name for p in PACKAGE.glob("*.py") if p.name not in {"__init__.py", "__main__.py"}
    )
    assert not loose, f"{loose}: every module lives in a room (a package), not at the top"


def test_every_package_says_what_it_holds_and_may_import() -> None:
    # The docstring is what a reader meets first; it names exactly the rooms below it.
    layers = _contract_layers()
    for depth, layer in enumerate(layers):
        below = sorted(name for lower in layers[depth + 1 :] for name in lower)
        for name in layer:
            doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text()))
            assert doc and len(doc.splitlines()[0]) > 20, f"{name}: say what the package holds"
            line = next((ln for ln in doc.splitlines() if ln.startswith("May import")), "")
            named = sorted(w.strip(" .,`") for w in line.removeprefix("May import:").split(","))
            expected = below or ["nothing"]
            assert named == expected, f"{name}/__init__.py: 'May import: {', '.join(expected)}.'"


def test_no_module_is_over_the_size_a_reader_can_hold() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these (at most {MAX_LINES} lines): {long}"


def _loaded_by(module: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "module", ["newsletter.records.journal", "newsletter.mail.smtp", "newsletter.sending.engine"]
)
def test_the_transport_and_journal_do_not_load_message_building(module: str) -> None:
    # The journal and the transport are handed an Envelope; they must not drag in the
    # message builder, the renderer, the CSV reader or the address validator.
    loaded = _loaded_by(module)
    upper = {
        "newsletter.sending.message",
        "newsletter.content.render",
        "newsletter.members.recipients",
        "newsletter.members.suppression",
        "newsletter.sending.campaign",
        "email_validator",
        "jinja2",
    }
    assert module in loaded
    assert not loaded & upper, sorted(loaded & upper)


def test_no_module_imports_another_ones_private_names() -> None:
    # A helper another module needs is public in the module whose job it is (e.g. csvfile).
    private = [
        f"{module} imports {name} from {target}"
        for module, edges in _imports().items()
        for target, names in edges
        for name in names
        if name.startswith("_") and not name.startswith("__") and target != module
    ]
    assert not private, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    # The check below is only as good as this: a two-module and a three-module loop.
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert _cycles(graph) == [["a", "b"], ["c", "d", "e"]]


def test_import_graph_reads_relative_imports() -> None:
    # The cycle check is only as good as the graph: a deferred relative import is an edge.
    graph = _imports()
    assert any(
        target == "newsletter.common.errors" for target, _ in graph["newsletter.common.config"]
    )
    assert any(
        target.startswith("newsletter.sending") for target, _ in graph["newsletter.cli.commands"]
    )


def test_no_import_cycles_among_newsletter_modules() -> None:
    # Deferred imports inside functions count: a cycle there is still two modules that
    # each need the other, and the next top-level import turns it into a start-up crash.
    # A package's __init__ re-exporting its modules is not a cycle of theirs.
    graph = {
        module: {
            t for t, _ in edges if t != module and not (PACKAGE / Path(*t.split(".")[1:])).is_dir()
        }
        for module, edges in _imports().items()
    }
    assert not _cycles(graph), _cycles(graph)


def test_the_interface_imports_no_infrastructure_libraries() -> None:
    # The commands parse options, call one core function and print; SMTP, SQLite and
    # templates belong to the rooms below.
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0
        }
        assert not imported & {"smtplib", "sqlite3", "jinja2", "ssl", "socket"}, path.name
