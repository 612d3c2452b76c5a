"""`.env` edited as the chair's own file: values read back exactly as written, comments and
order kept, duplicates resolved, new settings at the end, the file private."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dotenv import dotenv_values

from newsletter.setup.envfile import HEADER, read_env, updated_text, write_env


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "Cluster News <news@wmhtc.co.uk>",
        'quote " and back\\slash',
        "hash # not a comment",
        "$HOME stays literal",
        "it's",
        "trailing space ",
        "",
        "https://wmhtc.co.uk/u?t={token}",
    ],
)
def test_values_read_back_as_written(tmp_path: Path, value: str) -> None:
    path = tmp_path / ".env"
    write_env(path, {"NEWSLETTER_X": value})
    assert dotenv_values(path)["NEWSLETTER_X"] == value


def test_comments_order_and_other_lines_are_kept() -> None:
    text = "# mine\nexport NEWSLETTER_A=1\n\nNEWSLETTER_B=2  # note\nNEWSLETTER_A=dup\n"
    new = updated_text(text, {"NEWSLETTER_A": "9", "NEWSLETTER_C": "3"})
    assert new == (
        f"# mine\nNEWSLETTER_A=9\n\nNEWSLETTER_B=2  # note\n\n{HEADER}\nNEWSLETTER_C=3\n"
    )


def test_the_file_is_private_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("NEWSLETTER_A=1\n")
    write_env(path, {"NEWSLETTER_A": "2"})
    assert read_env(path) == {"NEWSLETTER_A": "2"}
    assert not list(tmp_path.glob(".env.*.tmp"))  # no temporary file left behind
    if os.name == "posix":
        assert path.stat().st_mode & 0o077 == 0
