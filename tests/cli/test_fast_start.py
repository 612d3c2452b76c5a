"""A faster start: each command loads only the libraries it uses; compiled templates are kept
between runs, and reused only for the same template file and text; CSS inlining without
cssutils' validation writes the same HTML."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.common.errors import TemplateError
from newsletter.content import render
from newsletter.content.issue import parse_issue

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {
    "premailer", "requests", "cssutils", "lxml", "mjml", "PIL", "jinja2", "markdown_it",
    "yaml", "email_validator", "sqlite3", "pydantic",
}  # fmt: skip
RENDERING = {"premailer", "requests", "cssutils", "lxml", "mjml", "jinja2", "markdown_it", "yaml"}
LOADED = """
import json, sys
from newsletter.cli.commands import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def typer_without_pydantic() -> bool:
    import typer

    version = tuple(int(part) for part in typer.__version__.split(".")[:2])
    return version < (0, 29)  # 0.29 coerces every parameter through pydantic


def loaded_by(project: Path, *args: str) -> set[str]:
    """The top-level modules a fresh ``newsletter ARGS`` process had loaded at its end, its
    temporary folder (where compiled templates and inlined HTML are kept) the project's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    (project / "temp").mkdir(exist_ok=True)
    env["TMPDIR"] = env["TEMP"] = env["TMP"] = str(project / "temp")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", LOADED, *args],
        cwd=project, env=env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return {name.partition(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize(
    ("args", "needs"),
    [
        (["--help"], set()),
        (["--version"], set()),
        (["status", "december-2023"], {"email_validator", "sqlite3"}),
        (["unsubscribe", "someone@nghealth.uk"], {"email_validator"}),
        (["list"], {"jinja2", "markdown_it", "yaml", "email_validator", "sqlite3"}),
        (["new", "another", "--date", "2024-03-01"], {"jinja2"}),
        (["render", "december-2023", "--out", "out"], RENDERING),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_command_loads_only_the_libraries_it_uses(
    project: Path, args: list[str], needs: set[str]
) -> None:
    loaded = loaded_by(project, *args)
    unused = HEAVY - needs
    if not typer_without_pydantic():
        unused -= {"pydantic"}  # Typer 0.29 loads it for any parameter (pyproject pins <0.29)
    assert not loaded & unused, sorted(loaded & unused)
    assert needs <= loaded  # the test names what each command really needs


def test_a_second_render_of_the_same_issue_does_not_load_the_css_inliner(project: Path) -> None:
    first = project / "first"
    assert {"premailer", "cssutils"} <= loaded_by(
        project, "render", "december-2023", "--out", str(first)
    )
    html = (first / "december-2023.html").read_text(encoding="utf-8")
    again = project / "again"
    loaded = loaded_by(project, "render", "december-2023", "--out", str(again))
    assert not loaded & {"premailer", "cssutils", "requests", "lxml"}
    assert (again / "december-2023.html").read_text(encoding="utf-8") == html
    # An edited issue is inlined again.
    issue = project / "issues" / "december-2023.md"
    issue.write_text(
        issue.read_text(encoding="utf-8") + "\nA new closing line.\n", encoding="utf-8"
    )
    edited = project / "edited"
    assert "premailer" in loaded_by(project, "render", "december-2023", "--out", str(edited))
    assert "A new closing line." in (edited / "december-2023.html").read_text(encoding="utf-8")


@pytest.fixture
def private_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Jinja's per-user cache folder under tmp_path, and no Environment kept from before."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setattr(render, "_ENVIRONMENTS", {})
    return folder


def rendered(project: Path) -> str:
    """The example issue's text part (its member-field slots, random per render, as "SLOT")."""
    render._ENVIRONMENTS.clear()  # a fresh process: the templates are loaded again
    issue = parse_issue(project / "issues" / "december-2023.md")
    text = render.render_issue(issue, project / "templates", has_unsubscribe=True).text
    return re.sub(r"zz[0-9a-f]+s\d+zz", "SLOT", text)


def test_compiled_templates_are_kept_and_used_only_for_the_same_file_and_text(
    private_temp: Path, tmp_path: Path, make_project: Callable[..., Path]
) -> None:
    first, second = make_project(tmp_path / "first"), make_project(tmp_path / "second")
    text = rendered(first)
    kept = sorted(p.name for p in private_temp.rglob("__newsletter_*.cache"))
    assert kept  # compiled code was stored
    template = second / "templates" / "email.txt.j2"
    template.write_text("EDITED\n" + template.read_text(encoding="utf-8"), encoding="utf-8")
    assert rendered(second).startswith("EDITED")  # the other project's own template
    assert rendered(first) == text  # and the first one's again, not the other's code
    assert sorted(p.name for p in private_temp.rglob("__newsletter_*.cache")) == kept


def test_an_error_in_a_template_is_named_at_its_own_file_after_a_cache_hit(
    private_temp: Path, tmp_path: Path, make_project: Callable[..., Path]
) -> None:
    # Two projects with the same template, the same mistake in it: the compiled code names
    # the file it came from in what it generates, so each project's error names its own.
    projects = [make_project(tmp_path / name) for name in ("one", "two")]
    for project in projects:
        template = project / "templates" / "email.mjml.j2"
        lines = template.read_text(encoding="utf-8").splitlines(keepends=True)
        at = next(n for n, line in enumerate(lines) if line.lstrip().startswith("<mj-section"))
        lines.insert(at, "<mj-sectoin>\n")
        template.write_text("".join(lines), encoding="utf-8")
    for project in projects:
        with pytest.raises(TemplateError) as caught:
            rendered(project)
        assert Path(str(caught.value.path)) == project / "templates" / "email.mjml.j2"
        assert caught.value.line == at + 1


def test_rendering_works_where_no_cache_folder_can_be_had(
    private_temp: Path, tmp_path: Path, make_project: Callable[..., Path], monkeypatch
) -> None:
    project = make_project(tmp_path / "project")
    blocked = tmp_path / "a-file-not-a-folder"
    blocked.write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(blocked))
    assert "December" in rendered(project)


INLINED = """
import hashlib, sys
sys.path[:0] = [{root!r}]
from newsletter.content import emailhtml
if sys.argv[1] == "validating":
    emailhtml._without_css_validation = lambda: None
document = open(sys.argv[2], encoding="utf-8").read()
print(hashlib.sha256(emailhtml.inline_css(document).encode()).hexdigest())
"""


def test_inlining_without_css_validation_writes_the_same_html(
    tmp_path: Path, make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The MJML output of the example issue, inlined in two fresh processes: as premailer
    # does by default (validating) and as the send does (cssutils without profiles).
    from newsletter.content import emailhtml

    captured: list[str] = []
    monkeypatch.setattr(emailhtml, "inline_css", lambda doc, **_: captured.append(doc) or doc)
    rendered(make_project(tmp_path / "project"))
    source = tmp_path / "mjml-output.html"
    source.write_text(captured[0], encoding="utf-8")
    script = INLINED.format(root=str(ROOT))
    hashes = {
        mode: subprocess.run(
            [sys.executable, "-c", script, mode, str(source)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()  # fmt: skip
        for mode in ("validating", "fast")
    }
    assert hashes["validating"] == hashes["fast"]
    assert len(hashes["fast"]) == len(hashlib.sha256().hexdigest())


def test_kept_inlined_html_is_what_inlining_writes_and_the_folder_stays_small(
    tmp_path: Path, make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.content import emailhtml

    captured: list[str] = []
    monkeypatch.setattr(emailhtml, "inline_css", lambda doc, **_: captured.append(doc) or doc)
    rendered(make_project(tmp_path / "project"))
    monkeypatch.undo()
    document = captured[0]
    nonce = re.search(r"zz([0-9a-f]{12})s\d+zz", document).group(1)  # type: ignore[union-attr]
    expected = emailhtml.inline_css(document)  # no folder: inlined, nothing kept
    folder = tmp_path / "kept"
    folder.mkdir()
    assert emailhtml.inline_css(document, cache_dir=str(folder), nonce=nonce) == expected
    assert len(list(folder.iterdir())) == 1
    # Kept: another render's nonce gets its own tokens back from the same file.
    other = "0123456789ab"
    again = emailhtml.inline_css(document.replace(nonce, other), cache_dir=str(folder), nonce=other)
    assert again == expected.replace(nonce, other)
    assert len(list(folder.iterdir())) == 1
    for n in range(emailhtml.INLINED_KEPT + 3):
        emailhtml.inline_css(f"<p>{n}</p>", cache_dir=str(folder))
    assert len(list(folder.iterdir())) == emailhtml.INLINED_KEPT
