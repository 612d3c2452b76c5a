"""The house rules of README "Architecture", checked on the code itself."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _loaded_by(module: str) -> set[str]:
    """The modules a fresh interpreter has loaded after importing ``module``."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", ["newsletter.journal", "newsletter.smtp", "newsletter.delivery"])
def test_low_layers_do_not_load_the_upper_ones(module: str) -> None:
    # The journal and the transport are handed an Envelope; they must not drag in the
    # message builder, the renderer, the CSV reader or the address validator.
    loaded = _loaded_by(module)
    upper = {
        "newsletter.message",
        "newsletter.render",
        "newsletter.recipients",
        "newsletter.suppression",
        "newsletter.campaign",
        "email_validator",
        "jinja2",
    }
    assert module in loaded
    assert not loaded & upper, sorted(loaded & upper)


def _imports() -> dict[str, list[tuple[str, list[str]]]]:
    """module -> [(imported newsletter module, names imported from it)], at any depth.

    Read from the source, so imports inside functions (deferred for start-up speed) count too.
    """
    graph: dict[str, list[tuple[str, list[str]]]] = {}
    for path in sorted((ROOT / "newsletter").glob("*.py")):
        module = f"newsletter.{path.stem}"
        edges = graph.setdefault(module, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    edges.append((f"newsletter.{node.module}", [a.name for a in node.names]))
                else:  # from . import preview (but not: from . import __version__)
                    edges.extend(
                        (f"newsletter.{a.name}", [])
                        for a in node.names
                        if (ROOT / "newsletter" / f"{a.name}.py").is_file()
                    )
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("newsletter"):
                edges.append((str(node.module), [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                edges.extend((a.name, []) for a in node.names if a.name.startswith("newsletter."))
    return graph


def test_no_module_imports_another_ones_private_names() -> None:
    # A helper another module needs is public in the module whose job it is (e.g. csvfile).
    private = [
        f"{module} imports {name} from {target}"
        for module, edges in _imports().items()
        for target, names in edges
        for name in names
        if name.startswith("_") and target != module
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


def test_no_import_cycles_among_newsletter_modules() -> None:
    # Deferred imports inside functions count: a cycle there is still two modules that
    # each need the other, and the next top-level import turns it into a start-up crash.
    graph = {
        module: {target for target, _ in edges if target != module and target != "newsletter"}
        for module, edges in _imports().items()
    }
    assert not _cycles(graph), _cycles(graph)


# The rooms of README "Architecture", lowest first. A module may import from its own room
# and the rooms listed for it; never from a room above. A new module must be given a room
# here (and in the README's table) before the suite passes.
ROOMS: dict[str, tuple[str, ...]] = {
    "foundation": (
        "__init__", "errors", "config", "limits", "envelope", "model", "linktags", "slots",
        "csvfile", "outdir", "organisation", "refusals", "unsubscribe",
    ),
    "content": ("issue", "plaintext", "images", "render"),
    "members": ("recipients", "suppression"),
    "transport": (
        "smtp", "journal", "delivery",
        # Signing in to the mailbox (OAuth 2.0): used by smtp.py and imap.py.
        "oauth", "oauth_microsoft", "oauth_google", "oauth_command", "oauth_loopback",
        "oauth_store", "oauth_tokens",
        # The mailbox side: reading what comes back (newsletter feedback).
        "imap", "bounces", "feedback", "feedback_log",
    ),
    "message": ("message",),
    "core": (
        "campaign", "preflight", "sending", "status", "preview", "archive", "skeleton",
        "send_run", "daily",
        "published", "feedback_run",
    ),
    "interface": ("cli", "preview_server", "__main__"),
}  # fmt: skip
MAY_IMPORT: dict[str, set[str]] = {
    "foundation": {"foundation"},
    "content": {"foundation", "content"},
    "members": {"foundation", "members"},
    "transport": {"foundation", "transport"},
    "message": {"foundation", "content", "members", "message"},
    "core": {"foundation", "content", "members", "transport", "message", "core"},
    "interface": set(ROOMS),
}


def _room_of() -> dict[str, str]:
    return {f"newsletter.{m}": room for room, modules in ROOMS.items() for m in modules}


def test_every_module_has_a_room() -> None:
    rooms = _room_of()
    homeless = sorted(set(_imports()) - set(rooms))
    assert not homeless, (
        f"{homeless}: give each a room in ROOMS (tests/test_architecture.py) and a row in "
        "README 'Architecture'"
    )


def test_lower_rooms_never_import_upper_ones() -> None:
    rooms = _room_of()
    wrong = sorted(
        f"{module} ({rooms[module]}) imports {target} ({rooms[target]})"
        for module, edges in _imports().items()
        for target, _ in edges
        if module in rooms and target in rooms and rooms[target] not in MAY_IMPORT[rooms[module]]
    )
    assert not wrong, wrong


def test_the_interface_imports_no_infrastructure_libraries() -> None:
    # cli.py parses options, calls one core function and prints; SMTP, SQLite and
    # templates belong to the rooms below it.
    source = (ROOT / "newsletter" / "cli.py").read_text(encoding="utf-8")
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert not imported & {"smtplib", "sqlite3", "jinja2", "ssl", "socket"}
