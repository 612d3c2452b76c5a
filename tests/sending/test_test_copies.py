"""`send --test`: the copy unsubscribes its recipient, never the member; addresses pasted as
Outlook writes them; a copy from or to .env.example's placeholders says so, and to the
placeholder SMTP host it is refused. A real SMTP server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
from email.policy import default
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from support.helpers import SECRET, cli_env, first_member, run_cli

from newsletter.members.unsubscribe import verify

SLUG = "december-2023"


def test_test_copy_addresses_may_be_pasted_as_outlook_copies_them(
    project: Path, smtp_server
) -> None:
    # NEWSLETTER_TEST_TO takes semicolons "as Outlook writes them", and Outlook's To line is
    # "Deputy Chair <deputy@…>; …"; `unsubscribe` reads that form, --to refused it.
    env = cli_env(
        smtp_server, NEWSLETTER_TEST_TO="chair@wmhtc.co.uk; Deputy Chair <deputy@wmhtc.co.uk>"
    )
    by_setting = run_cli(["send", "december-2023", "--test"], env)
    assert by_setting.returncode == 0, by_setting.stderr
    as_zoe = ["--as", "Zoë Brennan <zoe.brennan@mmedtech.uk>"]  # --as pasted too
    by_flag = run_cli(
        ["send", "december-2023", "--test", "--to", "Ann Lee <ann@wmhtc.co.uk>", *as_zoe],
        env,
    )
    assert by_flag.returncode == 0, by_flag.stderr
    copies = smtp_server.handler.copies()
    last = email.message_from_bytes(smtp_server.handler.messages[-1].data, policy=default)
    assert copies == {"chair@wmhtc.co.uk": 1, "deputy@wmhtc.co.uk": 1, "ann@wmhtc.co.uk": 1}
    assert "Dear Zoë," in last.get_body(("plain",)).get_content()


# ---- a test copy unsubscribes the tester, never the member ---------------------------------


def test_a_test_copy_unsubscribes_its_recipient_not_the_member(project: Path, smtp_server) -> None:
    member = first_member(project)
    env = cli_env(smtp_server, NEWSLETTER_UNSUBSCRIBE_MAILTO="unsubscribe@wmhtc.co.uk")
    result = run_cli(["send", SLUG, "--test"], env)
    assert result.returncode == 0, result.stderr
    [received] = smtp_server.handler.messages
    assert received.rcpts == ("chair@wmhtc.co.uk",)
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    header = str(msg["List-Unsubscribe"])
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header.split("<", 1)[1].split(">", 1)[0]
    token = parse_qs(urlsplit(url).query)["t"][0]
    assert verify(token, SECRET) == "chair@wmhtc.co.uk"
    assert member not in header and "mailto:unsubscribe@wmhtc.co.uk" in header
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert token in html and token in text  # the footer link: the tester's too
    for body in (html, text):
        for start in range(len(body)):
            start = body.find("?t=", start)
            if start < 0:
                break
            found = body[start + 3 :].split('"')[0].split()[0].rstrip(">)")
            assert verify(found, SECRET) == "chair@wmhtc.co.uk", found
            start += 3
    # Still personalised as the member (names and fields).
    assert "Dear " in text


# ---- a test send on .env.example's placeholders ---------------------------------------------


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"NEWSLETTER_TEST_TO": "chair@example.org"}, "NEWSLETTER_TEST_TO"),
        ({"NEWSLETTER_FROM": "Cluster News <news@example.org>"}, "NEWSLETTER_FROM"),
    ],
)
def test_a_test_send_from_or_to_a_placeholder_says_so(
    project: Path, smtp_server, extra, setting
) -> None:
    # Sent (one copy is harmless, and test set-ups use example.org on purpose), but the
    # chair reads why it will not arrive, or why the real send's checks will refuse.
    result = run_cli(["send", SLUG, "--test"], cli_env(smtp_server, **extra))
    assert result.returncode == 0, result.stdout + result.stderr
    assert smtp_server.handler.count() == 1
    notes = [line for line in result.stderr.splitlines() if "placeholder" in line]
    assert len(notes) == 1 and notes[0].startswith(f"note: {setting}: "), result.stderr
    assert "example.org" in notes[0]


def test_a_test_send_to_a_placeholder_given_with_to_names_the_option(project, smtp_server) -> None:
    result = run_cli(["send", SLUG, "--test", "--to", "me@example.com"], cli_env(smtp_server))
    assert result.returncode == 0
    assert "note: --to: 'me@example.com' is on example.com" in result.stderr
    assert smtp_server.handler.count() == 1


def test_a_test_send_to_the_placeholder_smtp_host_is_refused(project: Path) -> None:
    env = cli_env(NEWSLETTER_SMTP_HOST="smtp.example.org")
    result = run_cli(["send", SLUG, "--test"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: NEWSLETTER_SMTP_HOST: 'smtp.example.org'"
    )
