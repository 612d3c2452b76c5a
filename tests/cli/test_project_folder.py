"""Which folder is the project: a command run from issues/ (or any folder holding nothing of a
project) is refused in one line and creates nothing there; the templates alone start the
first issue; an issue file given by path with the templates set is a project; the README's
first command runs on the shipped example and defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.helpers import cli_env, run_cli

SLUG = "december-2023"

# ---- the wrong folder ----------------------------------------------------------------------

NOT_A_PROJECT = "this folder is not a newsletter project"


@pytest.mark.parametrize(
    "args",
    [
        ["check", SLUG],
        ["send", SLUG, "--dry-run"],
        ["send", SLUG, "--test"],
        ["status", SLUG],
        ["preview", "--out", "x.html"],
        ["archive"],
        ["list"],
        ["feedback"],
        ["resubscribe", "a@wmhtc.co.uk"],
        ["render", SLUG],
    ],
    ids=lambda args: "-".join(args[:2]),
)
def test_a_command_run_inside_issues_says_it_is_not_the_project(project: Path, args) -> None:
    os.chdir(project / "issues")
    result = run_cli(args, cli_env())
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (
        f"error: {NOT_A_PROJECT} (no issues/, recipients.csv or .env in {project / 'issues'}): "
        "run newsletter from the project folder"
    )


def test_unsubscribe_inside_issues_creates_no_suppression_list_there(project: Path) -> None:
    os.chdir(project / "issues")
    result = run_cli(["unsubscribe", "jane@nghealth.uk"], cli_env())
    assert result.returncode == 2, result.stdout
    assert NOT_A_PROJECT in result.stderr and "suppressed" not in result.stdout
    assert not (project / "issues" / "suppressed.csv").exists()
    # A .env alone (say, copied into the wrong folder) does not make it a members' folder.
    (project / "issues" / ".env").write_text("NEWSLETTER_SECRET=x\n", encoding="utf-8")
    again = run_cli(["unsubscribe", "jane@nghealth.uk"], cli_env())
    assert again.returncode == 2 and NOT_A_PROJECT in again.stderr
    assert "suppressed.csv was not created" in again.stderr
    assert not (project / "issues" / "suppressed.csv").exists()
    # From the project folder it works, and goes into the list the sends read.
    os.chdir(project)
    done = run_cli(["unsubscribe", "jane@nghealth.uk"], cli_env())
    assert done.returncode == 0, done.stderr
    assert "jane@nghealth.uk" in (project / "suppressed.csv").read_text(encoding="utf-8")


def test_new_in_a_folder_with_only_the_templates_still_starts_the_first_issue(
    tmp_path: Path, monkeypatch, make_project
) -> None:
    make_project(tmp_path, issues=False, members=None)  # the templates alone
    monkeypatch.chdir(tmp_path)
    result = run_cli(["new", "january-2024"], cli_env())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "issues" / "january-2024.md").is_file()
    # ...but not from a folder with nothing of the project at all.
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    refused = run_cli(["new", "january-2024"], cli_env())
    assert refused.returncode == 2 and NOT_A_PROJECT in refused.stderr
    assert not (empty / "issues").exists()


def test_the_quick_start_folder_still_dry_runs_on_the_defaults(
    tmp_path: Path, monkeypatch, make_project
):
    """The README's first command: the example issue and recipients.csv.example, no .env,
    works as before; from the wrong folder it is refused. (The folder is a copy of what a
    fresh checkout ships, never the checkout itself, which holds the chair's own files.)"""
    make_project(tmp_path, members="example")
    monkeypatch.chdir(tmp_path)
    result = run_cli(["send", SLUG, "--dry-run"], cli_env())
    assert result.returncode == 0, result.stderr
    assert "will send: 6 message(s), written to outbox/december-2023/" in result.stdout
    # The same command from its issues/ folder: one line, no outbox written there.
    os.chdir(tmp_path / "issues")
    wrong = run_cli(["send", SLUG, "--dry-run"], cli_env())
    assert wrong.returncode == 2 and NOT_A_PROJECT in wrong.stderr
    assert not (tmp_path / "issues" / "outbox").exists()


def test_an_issue_file_given_by_path_with_the_templates_set_is_a_project(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering an issue file by its path, with NEWSLETTER_TEMPLATES_DIR pointing at the
    templates, from a folder that holds neither issues/ nor a members list, still works:
    the organisation's details mark the project (inside issues/ they do not)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    issue = project / "issues" / "december-2023.md"
    env = {"NEWSLETTER_TEMPLATES_DIR": str(project / "templates")}
    result = run_cli(["render", str(issue), "--out", "out"], env=env)
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "out" / "december-2023.html").is_file()
    monkeypatch.chdir(project / "issues")
    refused = run_cli(["render", "december-2023", "--out", "out"])
    assert refused.returncode == 2 and "not a newsletter project" in refused.stderr
