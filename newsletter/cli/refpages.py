"""The reference pages made from declarations: settings, front matter, checks, file formats.

Each function returns one page (Markdown) from the one place the code declares it: the
``Settings`` fields and their help (common/config.py), the front-matter ``KEYS``
(content/frontmatter.py), the check ids (sending/checks/findings.py ``Check``, and
``doctor``'s in domain/findings.py), the members list's column aliases (members/), the
suppression list's header, the journal's and the feedback log's SQL (records/). The short
prose around the tables is written here, so each page stays one generated file.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ..common.config import PREFIX, SECTIONS, Settings, env_name
from ..common.outdir import MARKER
from ..content.body import CONTAINERS
from ..content.frontmatter import KEYS
from ..domain.findings import CheckId
from ..domain.findings import Status as DoctorStatus
from ..members.recipients import (
    ALIASES,
    LEFT_LIST_COLUMNS,
    MULTI_ADDRESS_SEPARATOR,
    SUBSCRIBED_VALUES,
    UNSUBSCRIBED_VALUES,
)
from ..members.suppression import HEADER as SUPPRESSION_HEADER
from ..records.feedback_log import FEEDBACK_SCHEMA, LOG_NAME
from ..records.journal import JOURNAL_NAME
from ..records.schema import JOURNAL_SCHEMA, describe_tables
from ..sending.checks.findings import GROUPS, Check
from ..sending.policy import UNFORCEABLE
from . import refmarkdown as md

# ---- settings -----------------------------------------------------------------------------


def settings_page() -> str:
    lines = md.header(
        "Settings",
        "the Settings fields (newsletter/common/config.py)",
        "Every setting is an environment variable, or a line of the `.env` file in the "
        "folder you run `newsletter` from (copy `.env.example` to start; `newsletter setup` "
        "writes the ones a send needs). The environment wins over `.env`, and command-line "
        'options win over both. An empty value means "not set": the default applies. '
        "Choices (`starttls`, `keyring`, ...) are read in any case; `true`/`false` also as "
        "`yes`/`no`, `1`/`0`, `on`/`off`.",
    )
    for title, group in _setting_sections():
        lines += [f"## {md.escape(title)}", ""]
        rows = [
            (md.code(env_name(f.name)), _setting_default(f), md.prose(f.metadata["help"]))
            for f in group
        ]
        lines += [*md.table(("setting", "default", "meaning"), rows), ""]
    return md.page(lines)


def _setting_sections() -> list[tuple[str, list[Any]]]:
    """(section title, its fields), in declaration order; SECTIONS names each first field."""
    sections: list[tuple[str, list[Any]]] = []
    for f in fields(Settings):
        if f.name in SECTIONS or not sections:
            sections.append((SECTIONS.get(f.name, "Settings"), []))
        sections[-1][1].append(f)
    return sections


def _setting_default(f: Any) -> str:
    default = f.default if f.default is not MISSING else None
    if default in ("", None):
        return "(empty)"
    if isinstance(default, bool):
        return md.code(str(default).lower())
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return md.code(default.as_posix() if isinstance(default, Path) else str(default))


def setting_names() -> set[str]:
    """Every NEWSLETTER_* name the settings declare."""
    return {env_name(f.name) for f in fields(Settings)}


# ---- front matter -------------------------------------------------------------------------


def front_matter_page() -> str:
    lines = md.header(
        "Front matter",
        "KEYS (newsletter/content/frontmatter.py)",
        "An issue file starts with its front matter: `key: value` lines (YAML) between two "
        "`---` lines. A misspelt key (`Draft:`, `darft:`, `pre-header:`) is an error at its "
        "line, since it would be ignored; a key unlike any of these is ignored with a "
        "`check` warning. A value holding `: ` or starting with a quote needs double quotes "
        "around it; a ` #` in `title`, `subject` or `preheader` is kept as written.",
    )
    rows = [
        (
            md.code(key.name),
            "yes" if key.required else "no",
            key.kind,
            key.default,
            key.meaning,
        )
        for key in KEYS
    ]
    lines += md.table(("key", "required", "value", "default", "meaning"), rows)
    lines += ["", "Example:", "", "```yaml", "---"]
    lines += [f"{key.name}: {_EXAMPLE[key.name]}" for key in KEYS if key.name in _EXAMPLE]
    lines += ["---", "```"]
    return md.page(lines)


_EXAMPLE = {
    "title": "Cluster News – December 2023",
    "subject": "\"{{ recipient.first_name or 'Members' }}, your December news\"",
    "preheader": "Skills, statistics and three events before Christmas.",
    "date": "2023-12-14",
    "draft": "true",
}


# ---- checks -------------------------------------------------------------------------------


def checks_page() -> str:
    lines = md.header(
        "Checks",
        "Check (newsletter/sending/checks/findings.py) and CheckId (newsletter/domain/findings.py)",
        "`newsletter check` (and every send, before it starts) reports each problem as "
        "`severity: where: message — fix`. An **error** refuses a real send unless you add "
        "`--force`; those marked *never forced* are refused even then. A **warning** and an "
        "**info** note only inform. Each finding has a stable id, listed here.",
    )
    for check in Check:
        if check in GROUPS:
            lines += ["", f"## {GROUPS[check]}", ""]
            lines += ["| id | severity | what it means |", "| --- | --- | --- |"]
        severity = " or ".join(str(s) for s in check.severities)
        severity += "; never forced" if check in UNFORCEABLE else ""
        lines.append("| " + " | ".join(md.cell(c) for c in (md.code(check), severity,
                                                               check.description)) + " |")  # fmt: skip
    lines += [
        "",
        "## What `newsletter doctor` checks",
        "",
        "`newsletter doctor` reports each of these as "
        + ", ".join(md.code(str(s)) for s in DoctorStatus)
        + " (`doctor --json` prints `check`, `status`, `message` and `fix` for each). A "
        "problem it finds in the settings or the DNS is also a `check` finding above, under "
        "the same id as its problem.",
        "",
    ]
    lines += md.table(("check", "what it looks at"), ((md.code(c), c.description) for c in CheckId))
    return md.page(lines)


# ---- file formats -------------------------------------------------------------------------


def file_formats_page() -> str:
    lines = md.header(
        "File formats",
        "the readers and schemas in newsletter/ (members/, records/, content/)",
        "The files `newsletter` reads and writes, in the project folder (the folder you run "
        "it from; the [settings](settings.md) can move each).",
    )
    lines += _issue_file() + _members_csv() + _suppression_list()
    lines += _databases() + _output_folders()
    return md.page(lines)


def _issue_file() -> list[str]:
    containers = ", ".join(md.code(f"::: {name}") for name in CONTAINERS)
    return [
        "## Issue file (`issues/SLUG.md`)",
        "",
        "One Markdown file per issue; its name without `.md` is the issue's *slug* "
        "(`december-2023`), which every command takes. It starts with the "
        "[front matter](front-matter.md); the body is CommonMark:",
        "",
        "- `#` starts a section (a coloured band), `##` an article in it, `###` a "
        "sub-heading inside an article; articles before the first `#` open the issue.",
        f"- Blocks: {containers} (`Label: value` lines of an event's key facts; the "
        "closing words), each ended by a `:::` line.",
        "- `[Text](https://…){.button}` on a line of its own is a call-to-action button.",
        "- `![alt text](https://… or images/photo.jpg)`: a picture; alt text is required.",
        '- Member fields: `{{ recipient.first_name or "member" }}` (a column of the members '
        "list, normalised: `First Name` → `first_name`).",
        "- `<!-- … -->` comments are left out of the bulletin.",
        "",
    ]


def _members_csv() -> list[str]:
    roles = {"email": "the address (required)", "first_name": "first name",
             "last_name": "last name", "organisation": "organisation"}  # fmt: skip
    rows = [
        (roles.get(role, role), md.code(f"recipient.{role}"), ", ".join(md.code(a) for a in names))
        for role, names in ALIASES.items()
    ]
    values = ", ".join(md.code(v) for v in sorted(UNSUBSCRIBED_VALUES))
    subscribed = ", ".join(md.code(v) for v in sorted(SUBSCRIBED_VALUES) if v) + ", empty"
    return [
        "## Members list (`recipients.csv`)",
        "",
        "A CSV file as spreadsheets, Outlook, Google Contacts and Mailchimp export it: "
        "UTF-8 (with or without a BOM), UTF-16 or Windows-1252; separated by commas, "
        "semicolons or tabs (whichever the header uses most); the first row names the "
        "columns. Column names are read normalised (lower case, `_` for spaces and "
        "punctuation: `E-mail Address` → `e_mail_address`), and every column is a member "
        "field, `{{ recipient.COLUMN }}`. The tool itself recognises:",
        "",
        *md.table(("column", "field", "names recognised (normalised)"), rows),
        "",
        "- `name`: a full name, which greets members when there is no first-name column.",
        f"- `subscribed`: {values} leave the member out; {subscribed} keep them; "
        "anything else makes the row invalid.",
        "- "
        + ", ".join(md.code(c) for c in LEFT_LIST_COLUMNS)
        + " (Mailchimp's exports of contacts who left): a row with one filled in is left "
        "out.",
        f"- Several addresses in one cell, separated by {md.code(MULTI_ADDRESS_SEPARATOR)} "
        "(as Google Contacts writes them): the first is used.",
        "- Row numbers in messages are spreadsheet rows (the header is row 1).",
        "",
    ]


def _suppression_list() -> list[str]:
    header = ",".join(SUPPRESSION_HEADER)
    return [
        "## Suppression list (`suppressed.csv`)",
        "",
        "Addresses never mailed again, kept apart from the members list so that importing "
        "the list again can never re-subscribe anyone. A CSV file with the header "
        f"{md.code(header)} (and `issue`, when `newsletter feedback` adds a row): written "
        "by `newsletter unsubscribe`, `newsletter feedback` (hard bounces, complaints, "
        "unsubscribe requests, repeated soft bounces) and read by every send; "
        "`newsletter resubscribe` takes an address off. You may add rows by hand; only the "
        "address column is required.",
        "",
    ]


def _databases() -> list[str]:
    return [
        f"## Send journal (`.newsletter/{JOURNAL_NAME}`)",
        "",
        "A SQLite database in the state folder (`NEWSLETTER_STATE_DIR`): what was sent to "
        "whom, so that a send can be resumed and nobody gets an issue twice. Read it with "
        "`newsletter status` and `newsletter list`; never edit it while a send runs.",
        "",
        *_schema_tables(JOURNAL_SCHEMA),
        f"## Feedback log (`.newsletter/{LOG_NAME}`)",
        "",
        "What `newsletter feedback` processed and found, beside the journal (so reading the "
        "mailbox never slows a send).",
        "",
        *_schema_tables(FEEDBACK_SCHEMA),
    ]


def _schema_tables(schema: str) -> list[str]:
    """One table per SQL table: its columns, types and the comment beside each."""
    lines: list[str] = []
    for table in describe_tables(schema):
        key = f" (key: {', '.join(table.key)})" if table.key else ""
        rows = [(md.code(c.name), c.type, md.prose(c.meaning)) for c in table.columns]
        lines += [f"Table {md.code(table.name)}{key}:", ""]
        lines += [*md.table(("column", "type", "meaning"), rows), ""]
    return lines


def _output_folders() -> list[str]:
    return [
        "## Output folders",
        "",
        "- `outbox/SLUG/` (`send --dry-run`, or `--out`): one `.eml` file per member a real "
        "send would mail.",
        "- `archive/` (`newsletter archive`, or `--out`): the web archive: `SLUG.html` per "
        "published issue, `index.html`, `feed.xml` (Atom) and `assets/` (the pictures).",
        "- `newsletter render SLUG --out DIR`: `SLUG.html` and `SLUG.txt` in `DIR`.",
        "",
        "An output folder is replaced whole, and only one this tool made: it holds a "
        f"marker file, {md.code(MARKER)}; a folder without it is refused, never deleted. The "
        "new one is written beside it first (`NAME.partial`), so an interrupted run leaves "
        "the old folder or the new one, never half of each.",
        "",
        f"Settings are read from `.env` in the project folder; every name starts with "
        f"{md.code(PREFIX)} ([settings](settings.md)).",
    ]
