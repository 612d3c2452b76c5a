"""Messages that send the reader to the documentation name a page that exists, and none
sends them to the README (an introduction now, not the reference)."""

from __future__ import annotations

import ast
import re

from support.projects import ROOT

from newsletter.common.docs import DocPage
from newsletter.common.errors import ConfigError

DOCS_PATH = re.compile(r"docs/[\w/.-]+\.md")


def _strings() -> list[tuple[str, str]]:
    """(where, text) of every string constant in newsletter/**, docstrings included."""
    found = []
    for path in sorted((ROOT / "newsletter").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((f"{path.relative_to(ROOT).as_posix()}:{node.lineno}", node.value))
    return found


def test_every_docs_path_in_the_code_is_a_page() -> None:
    named = {(where, page) for where, text in _strings() for page in DOCS_PATH.findall(text)}
    named |= {("DocPage", str(page)) for page in DocPage}
    missing = sorted(f"{where}: {page}" for where, page in named if not (ROOT / page).is_file())
    assert not missing, missing
    assert len(named) > len(DocPage)  # the scan does find the paths written in the code


def test_no_message_sends_the_reader_to_the_readme() -> None:
    said = [where for where, text in _strings() if "README" in text]
    assert not said, said


def test_a_sign_in_hint_names_the_providers_page(tmp_path) -> None:
    from newsletter.common.config import Settings

    settings = Settings(smtp_host="smtp.office365.com", smtp_username="news@x.org")
    try:
        settings.require_oauth_client()
    except ConfigError as error:
        assert error.hint and DocPage.MICROSOFT_365 in error.hint
    else:
        raise AssertionError("no app registration: require_oauth_client must refuse")
    assert DocPage.for_provider("google") is DocPage.GOOGLE
    assert DocPage.for_provider("") is DocPage.IT
