"""What a new user following the README ran into: files replaced by `preview --out`, a
summary that ignored the flags given, month typos in `new`, slug typos, wording that said
less than the truth. CLI tests run in-process (helpers.run_cli)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from helpers import FakeClock, run_cli
from smtp_servers import RecordingHandler, start_server
from test_send_cli import env_for, write_members

from newsletter.content.skeleton import issue_date
from newsletter.sending.engine import DeliveryEvent

ROOT = Path(__file__).resolve().parent.parent
SLUG = "december-2023"


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text and "internal error" not in text, text
    return lines[0]


@pytest.fixture
def server(tmp_path: Path):
    with start_server(RecordingHandler(), tls="starttls", auth=True, cafile_dir=tmp_path) as srv:
        yield srv


# 1. preview --out FILE


@pytest.mark.parametrize(
    "target", ["issues/december-2023.md", ".env", "recipients.csv", "templates/email.mjml.j2"]
)
def test_preview_out_never_replaces_a_file_that_is_not_html(project: Path, target: str) -> None:
    path = project / target
    if not path.exists():
        path.write_text("NEWSLETTER_SECRET=keep-me\n", encoding="utf-8")
    before = path.read_bytes()
    result = run_cli(["preview", SLUG, "--out", target])
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert target in line and ".html" in line
    assert path.read_bytes() == before


def test_preview_out_writes_only_an_html_name_and_may_replace_one(project: Path) -> None:
    result = run_cli(["preview", SLUG, "--out", "photo.jpg"])
    assert result.returncode == 2 and "photo.jpg" in one_line(result.stderr)
    assert not (project / "photo.jpg").exists()
    (project / "old.HTM").write_text("old", encoding="utf-8")
    result = run_cli(["preview", SLUG, "--out", "old.HTM"])
    assert result.returncode == 0, result.stderr
    assert "<html" in (project / "old.HTM").read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("target", ["issues", ""])
def test_preview_out_folder_is_a_usage_error(project: Path, target: str) -> None:
    result = run_cli(["preview", SLUG, "--out", target])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is a folder" in one_line(result.stderr)


# 2. render --out FILE


def test_render_out_an_existing_file_says_out_is_a_folder(project: Path) -> None:
    before = (project / "recipients.csv").read_bytes()
    result = run_cli(["render", SLUG, "--out", "recipients.csv"])
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_line(result.stderr)
    assert "recipients.csv" in line and "folder" in line
    assert (project / "recipients.csv").read_bytes() == before


# 3. The summary before [y/N] shows the pacing the run will use


def test_send_summary_shows_the_pacing_given_on_the_command_line(project: Path, server) -> None:
    write_members(project, 30)
    args = ["send", SLUG, "--rate", "20", "--connections", "2", "--batch-size", "10"]
    result = run_cli([*args, "--batch-pause", "5"], env_for(server))
    # No terminal to answer [y/N] here: the summary is printed, then nothing is sent.
    assert result.returncode == 2 and "no terminal" in result.stderr
    assert "Pacing:    20 messages/minute, 2 connection(s), pause 5 s every 10" in result.stdout
    assert "about 2 minutes at 20 a minute" in result.stdout
    assert server.handler.count() == 0


# 4. new: a month it cannot place


@pytest.mark.parametrize(
    ("slug", "meant"),
    [
        ("janaury-2027", "january-2027"),
        ("february-27", "february-2027"),
        ("decmber-2026-special", "december-2026-special"),
    ],
)
def test_new_refuses_a_month_it_cannot_place_and_says_what_was_meant(
    project: Path, slug: str, meant: str
) -> None:
    result = run_cli(["new", slug])
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"did you mean {meant}?" in one_line(result.stderr)
    assert not (project / "issues" / f"{slug}.md").exists()


@pytest.mark.parametrize("slug", ["2031-feb", "feb-2031"])  # not this month: dated the 1st
def test_new_reads_month_abbreviations_and_says_the_title_and_date(
    project: Path, slug: str
) -> None:
    result = run_cli(["new", slug])
    assert result.returncode == 0, result.stderr
    assert "February 2031" in result.stdout and "dated 2031-02-01" in result.stdout
    text = (project / "issues" / f"{slug}.md").read_text(encoding="utf-8")
    assert "February 2031" in text and "2031-02-01" in text
    # In the month it names, it is dated today, as before.
    assert issue_date(slug, dt.date(2031, 2, 17)) == dt.date(2031, 2, 17)


def test_new_with_a_date_takes_any_slug(project: Path) -> None:
    result = run_cli(["new", "janaury-2027", "--date", "2027-01-14"])
    assert result.returncode == 0, result.stderr
    assert "dated 2027-01-14" in result.stdout


# 5. Ctrl-C in preview: its normal end, and the README says so


def test_readme_says_ctrl_c_ends_the_preview_with_exit_0() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    exit_codes = readme[readme.index("| `0` |") :][:400]
    assert "preview" in exit_codes and "`0`" in exit_codes, exit_codes


# 6. Slugs as tab completion writes them; did you mean


@pytest.mark.parametrize("given", [f"{SLUG}.md", f"issues/{SLUG}.md"])
def test_a_slug_with_md_or_its_folder_is_the_slug(project: Path, given: str) -> None:
    dry = run_cli(["send", given, "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert (project / "outbox" / SLUG).is_dir()
    status = run_cli(["status", given])
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"{SLUG}: ")
    assert run_cli(["render", given, "--out", "build"]).returncode == 0
    assert (project / "build" / f"{SLUG}.html").is_file()


def test_an_unknown_slug_suggests_the_closest_issue(project: Path) -> None:
    result = run_cli(["send", "decmber-2023", "--dry-run"])
    assert result.returncode == 2
    assert f"no issue called 'decmber-2023': did you mean {SLUG}?" in one_line(result.stderr)


# 7. Progress rate, and the words after a resume


def _event(sent: int) -> DeliveryEvent:
    return DeliveryEvent("sent", f"m{sent}@x.org", sent, "250 OK", 1, sent, 0, 0, 0)


def test_progress_shows_no_rate_after_the_first_message(capsys) -> None:
    from newsletter.cli.views import deliver_with_progress

    clock = FakeClock()

    def run(on_event):
        clock.sleep(0.008)
        on_event(_event(1))
        return "result"

    assert deliver_with_progress(1, run, clock=clock) == "result"
    out = capsys.readouterr().out
    assert "sent 1" in out and "/min" not in out


def test_progress_shows_the_rate_once_it_means_something(capsys) -> None:
    from newsletter.cli.views import deliver_with_progress

    clock = FakeClock()

    def run(on_event):
        for n in range(1, 11):
            clock.sleep(6)
            on_event(_event(n))

    deliver_with_progress(10, run, clock=clock)
    assert "10/min" in capsys.readouterr().out


def test_a_resumed_send_says_this_run_and_the_whole(project: Path, server) -> None:
    write_members(project, 10)
    env = env_for(server)
    first = run_cli(["send", SLUG, "--yes", "--limit", "3"], env)
    assert first.returncode == 0, first.stderr
    assert f"Done: '{SLUG}' sent to 3 member(s) in this run; 3 of 10 have it." in first.stdout
    rest = run_cli(["send", SLUG, "--yes"], env)
    assert rest.returncode == 0, rest.stderr
    assert f"Done: '{SLUG}' sent to 7 member(s) in this run; 10 of 10 have it." in rest.stdout
    again = run_cli(["send", SLUG, "--yes"], env)
    assert again.returncode == 0, again.stderr
    assert "Already:   all 10 member(s) have it: nothing to resume" in again.stdout
    assert "Resuming:" not in again.stdout
    assert server.handler.count() == 10


# 8. list


def test_list_shows_an_unreadable_issue_and_the_subject_a_member_sees(project: Path) -> None:
    (project / "issues" / "zz-draft.md").write_text('---\ntitle: "unclosed\n', encoding="utf-8")
    issue = project / "issues" / f"{SLUG}.md"
    text = issue.read_text(encoding="utf-8")
    issue.write_text(
        re.sub(
            r"^subject: .*$",
            "subject: \"News for {{ recipient.first_name or 'Members' }}\"",
            text,
            count=1,
            flags=re.M,
        ),
        encoding="utf-8",
    )
    listed = run_cli(["list"])
    assert listed.returncode == 0, listed.stderr
    assert "zz-draft" in listed.stdout
    assert "cannot be read: issues/zz-draft.md:1:" in listed.stdout
    assert "subject: News for Members" in listed.stdout
    assert "recipient.first_name" not in listed.stdout


# 9. archive --out .


def test_archive_into_the_project_folder_suggests_site(project: Path) -> None:
    result = run_cli(["archive", "--out", "."])
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "site/" in line and "outbox" not in line
    # The dry run's refusal still suggests its own folder.
    result = run_cli(["send", SLUG, "--dry-run", "--out", "."])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: refusing to replace .:")
    assert "outbox/SLUG" in result.stderr and "site/" not in result.stderr


@pytest.mark.parametrize(
    ("slug", "today", "expected"),
    [
        ("december", dt.date(2026, 11, 29), dt.date(2026, 12, 1)),
        ("january", dt.date(2026, 11, 29), dt.date(2027, 1, 1)),
        ("nov-special", dt.date(2026, 11, 29), dt.date(2026, 11, 29)),  # this month: today
        ("what-may-come", dt.date(2026, 11, 29), dt.date(2026, 11, 29)),  # no month meant
    ],
)
def test_a_slug_that_is_a_months_name_is_the_coming_such_month(
    slug: str, today: dt.date, expected: dt.date
) -> None:
    """'newsletter new december' was refused ("cannot tell which month"); before that it
    was titled and dated for the current month. The chair means the coming December."""
    from newsletter.content.skeleton import issue_date, unplaced_month

    assert unplaced_month(slug, today) is None
    assert issue_date(slug, today) == expected
