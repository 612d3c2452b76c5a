"""What the command line shows before any work: --version, the order of --help, and the
third-party packages the code imports being declared."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

import typer.main
from support.projects import ROOT
from typer.testing import CliRunner

from newsletter import __version__
from newsletter.cli.commands import COMMAND_ORDER, app


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"newsletter {__version__}\n"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # One definition: the package metadata reads newsletter.__version__.
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "newsletter.__version__"
    }


def test_help_lists_commands_in_the_order_a_chair_uses_them() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = re.findall(r"^  (\w+) ", result.stdout.split("Commands:")[1], re.M)
    assert listed[:8] == [
        "new", "preview", "check", "send", "status", "list", "archive", "unsubscribe",
    ]  # fmt: skip
    # A new command must be given its place deliberately.
    assert sorted(typer.main.get_command(app).commands) == sorted(COMMAND_ORDER)
    assert listed == list(COMMAND_ORDER)


def test_every_imported_third_party_package_is_declared() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {
        re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower().replace("_", "-")
        for dep in pyproject["project"]["dependencies"]
    }
    imported: set[str] = set()
    for path in (ROOT / "newsletter").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"newsletter"}
    assert {"rich", "filelock", "typer"} <= third_party
    owners = packages_distributions()
    missing = {
        name
        for name in third_party
        if not {d.lower().replace("_", "-") for d in owners.get(name, [name])} & declared
    }
    assert not missing, f"imported but not in pyproject dependencies: {sorted(missing)}"
