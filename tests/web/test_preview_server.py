"""The live preview server, for real: serve() in a thread on a copy of the project's issue and
templates, fetched with urllib and driven in headless Chromium; and the CLI as a process.
"""

from __future__ import annotations

import dataclasses
import html
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import new_page
from support.projects import project_settings

from newsletter.common.config import Settings
from newsletter.common.errors import NewsletterError
from newsletter.web import preview
from newsletter.web.server import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SLUG = "december-2023"
TIMEOUT = 10.0  # seconds for any one wait: generous for a loaded CI machine, yet no hang


@pytest.fixture
def preview_settings(tmp_path: Path, make_project) -> Settings:
    """A project with the example issue and no members' list: the preview shows the
    anonymous sample, as the expected values below are."""
    return project_settings(make_project(tmp_path, members=None))


@dataclass(frozen=True)
class Expected:
    """What the page must show, taken from the issue itself: its wording may change."""

    subject: str
    preheader: str
    title: str
    sender: str
    text: str
    paragraph: str  # the issue's first plain paragraph, the one the tests edit


@pytest.fixture
def expected(preview_settings: Settings) -> Expected:
    rendered = preview.render_path(preview_settings, issue_file(preview_settings))
    subject, _, text = rendered.sample()
    return Expected(
        subject=subject,
        preheader=rendered.issue.preheader,
        title=rendered.issue.title,
        sender=f"{rendered.org.name} <{rendered.org.email}>",
        text=text,
        paragraph=first_paragraph(issue_file(preview_settings)),
    )


def issue_file(settings: Settings) -> Path:
    return settings.issues_dir / f"{SLUG}.md"


def first_paragraph(path: Path) -> str:
    """The first body line that is plain prose (no heading, list, quote, link or markup)."""
    body = path.read_text(encoding="utf-8").split("\n---\n", 1)[1]
    for line in body.splitlines():
        if re.fullmatch(r"[A-Z][\w ,.’'()–-]{40,}", line.strip()):
            return line.strip()
    raise AssertionError(f"no plain paragraph in {path}")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    # A new size: an edit within one mtime tick is seen by its size alone.
    assert len(new.encode()) != len(old.encode()), "choose an edit of another length"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def break_front_matter(path: Path) -> str:
    """Open a YAML flow sequence in the title and never close it; return the good text."""
    text = path.read_text(encoding="utf-8")
    assert "\ntitle: " in text
    path.write_text(text.replace("\ntitle: ", "\ntitle: [", 1), encoding="utf-8")
    return text


@dataclass
class Running:
    url: str
    messages: list[str] = field(default_factory=list)

    def get(self, path: str = "", headers: dict[str, str] | None = None) -> tuple[int, str, str]:
        """(status, content type, body) of a GET; HTTP errors are answers too."""
        request = urllib.request.Request(self.url + path.lstrip("/"), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read().decode()

    def version(self) -> str:
        status, _, body = self.get("/version")
        assert status == 200
        return body


@contextmanager
def running(settings: Settings, slug: str | None = SLUG) -> Iterator[Running]:
    """serve() in a thread, as the CLI runs it, until the block ends (then it must return)."""
    ready: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    messages: list[str] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            serve(
                settings,
                slug,
                open_browser=False,
                echo=messages.append,
                ready=ready.put,
                stop=stop,
            )
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)
            ready.put("")

    thread = threading.Thread(target=run, name="serve", daemon=True)
    thread.start()
    try:
        url = ready.get(timeout=30)
        assert url, f"serve() failed: {failures}"
        yield Running(url, messages)
    finally:
        stop.set()
        thread.join(TIMEOUT)
    assert not thread.is_alive(), "serve() did not return after stop was set"
    assert failures == []


def rerendered(server: Running, before: str) -> bool:
    """True when /version differs from ``before``. No waiting needed: the server compares the
    watched files' mtimes and sizes on every request, and each edit below changes a size."""
    return server.version() != before


# ---- over HTTP -----------------------------------------------------------------------------


def test_page_shows_inbox_line_both_widths_and_text(
    preview_settings: Settings, expected: Expected
) -> None:
    with running(preview_settings) as server:
        status, kind, page = server.get("/")
        assert status == 200 and kind.startswith("text/html")
        assert f'<dd class="subject">{html.escape(expected.subject)}</dd>' in page
        assert f'<dd class="preheader">{html.escape(expected.preheader)}</dd>' in page
        assert f'<dd class="from">{html.escape(expected.sender)}</dd>' in page
        assert 'class="desktop"' in page and "desktop width (640 px)" in page
        assert 'class="mobile"' in page and "mobile width (375 px)" in page
        assert "&" in expected.text  # so the next line also checks the escaping
        assert f'<pre class="text">{html.escape(expected.text)}</pre>' in page
        assert server.get("/email.txt")[2] == expected.text
        assert '<html lang="en"' in page and "<h1>" in page

        status, kind, email = server.get("/email.html")
        assert status == 200 and kind.startswith("text/html")
        assert "<html lang=" in email and html.escape(expected.paragraph, quote=False) in email


def test_announces_url_on_loopback_only(preview_settings: Settings) -> None:
    with running(preview_settings) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url)
        assert server.messages[0] == f"Previewing {SLUG} at {server.url} — Ctrl-C to stop"
        assert server.get("/nothing-here")[0] == 404
        # A foreign Host header is a DNS-rebinding page trying to read the preview.
        assert server.get("/", headers={"Host": "attacker.example:80"})[0] == 403


def test_newest_issue_without_slug_and_from_setting(preview_settings: Settings) -> None:
    older = preview_settings.issues_dir / "november-2023.md"
    shutil.copy(issue_file(preview_settings), older)
    text = older.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^date: .*$", "date: 2001-01-01", text, count=1)
    older.write_text(re.sub(r"(?m)^title: ", "title: Older – ", text, count=1), encoding="utf-8")
    from_ = 'Cluster News "Desk" <news@example.org>'
    with running(dataclasses.replace(preview_settings, from_=from_), slug=None) as server:
        assert server.messages[0].startswith(f"Previewing {SLUG} at ")
        page = server.get("/")[2]
        assert "Older – " not in page
        assert f'<dd class="from">{html.escape(from_)}</dd>' in page


def test_edit_rerenders_on_change_only(preview_settings: Settings, expected: Expected) -> None:
    with running(preview_settings) as server:
        first = server.version()
        assert server.version() == first  # nothing changed: no re-render, same version
        edit(
            issue_file(preview_settings),
            expected.paragraph,
            "The preview picked up this edited paragraph.",
        )
        assert rerendered(server, first), "the version changes after an edit"
        page = server.get("/")[2]
        assert "The preview picked up this edited paragraph." in page  # in the text part
        assert "The preview picked up this edited paragraph." in server.get("/email.html")[2]
        assert html.escape(expected.paragraph, quote=False) not in page


def test_render_error_is_shown_and_the_server_recovers(
    preview_settings: Settings, expected: Expected
) -> None:
    path = issue_file(preview_settings)
    with running(preview_settings) as server:
        before = server.version()
        good = break_front_matter(path)
        assert rerendered(server, before), "the broken issue is re-rendered"
        status, _, page = server.get("/")
        assert status == 200
        assert 'role="alert"' in page and 'class="desktop"' not in page
        error = re.search(r"<code>(.*?)</code>", page, re.S)
        assert error is not None
        line = html.unescape(error.group(1))
        assert re.match(rf".*{SLUG}\.md:\d+: front matter: ", line), line
        assert "\n" not in line
        assert server.get("/email.html")[0] == 503
        for _ in range(5):  # the page keeps polling: the server answers, the terminal is quiet
            server.version()
        errors = [m for m in server.messages if m.startswith("error:")]
        assert errors == [f"error: {line}"]

        broken = server.version()
        path.write_text(good, encoding="utf-8")
        assert rerendered(server, broken), "the fixed issue is re-rendered"
        page = server.get("/")[2]
        assert 'role="alert"' not in page and html.escape(expected.subject) in page
        assert server.messages[-1] == f"{SLUG}.md renders again."


def test_template_changes_rerender(preview_settings: Settings) -> None:
    organisation = preview_settings.templates_dir / "organisation.toml"
    template = preview_settings.templates_dir / "email.mjml.j2"
    with running(preview_settings) as server:
        before = server.version()
        text = organisation.read_text(encoding="utf-8")
        organisation.write_text(
            re.sub(r'(?m)^name = "', 'name = "Renamed ', text, count=1), encoding="utf-8"
        )
        assert rerendered(server, before), "a change under templates/ is noticed"
        assert "Renamed " in server.get("/email.html")[2]

        before = server.version()
        with template.open("a", encoding="utf-8") as file:
            file.write("{{ issue.nonsense }}\n")
        assert rerendered(server, before), "the broken template is noticed"
        page = server.get("/")[2]
        assert 'role="alert"' in page
        assert re.search(r"email\.mjml\.j2:\d+: unknown template variable", page)


def test_a_port_in_use_is_a_one_line_error(preview_settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(NewsletterError, match=rf"cannot listen on 127\.0\.0\.1:{port}"):
            serve(preview_settings, SLUG, port=port, open_browser=False, echo=lambda _: None)


# ---- in Chromium ---------------------------------------------------------------------------


@pytest.mark.browser
def test_page_in_chromium_shows_frames_and_reloads_itself(
    browser: Browser, preview_settings: Settings, expected: Expected
) -> None:
    from playwright.sync_api import expect

    with running(preview_settings) as server, new_page(browser, 1280, 900) as page:
        page.goto(server.url)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("h1").count() == 1
        for selector, width in (("iframe.desktop", 640), ("iframe.mobile", 375)):
            frame_element = page.locator(selector)
            assert frame_element.get_attribute("title")
            frame = frame_element.element_handle().content_frame()
            assert frame is not None
            frame.wait_for_load_state()
            assert frame.evaluate("window.innerWidth") == width, selector
            expect(frame.locator("h1")).to_contain_text(expected.title)
        desktop = page.locator("iframe.desktop").bounding_box()
        mobile = page.locator("iframe.mobile").bounding_box()
        assert desktop and mobile and abs(desktop["y"] - mobile["y"]) < 1  # side by side
        expect(page.locator("pre.text")).to_contain_text(expected.paragraph[:60])

        # Edit the issue; the page must reload by itself (the flag set below disappears).
        page.evaluate("window.notReloaded = true")
        edit(
            issue_file(preview_settings),
            expected.paragraph,
            "Chromium saw this edit without a reload.",
        )
        expect(page.locator("pre.text")).to_contain_text("Chromium saw this edit")
        assert page.evaluate("window.notReloaded") is None
        expect(page.frame_locator("iframe.mobile").locator("body")).to_contain_text(
            "Chromium saw this edit"
        )

        good = break_front_matter(issue_file(preview_settings))
        expect(page.get_by_role("alert")).to_contain_text(f"{SLUG}.md:")
        issue_file(preview_settings).write_text(good, encoding="utf-8")
        expect(page.locator("iframe.mobile")).to_be_visible()
        expect(page.get_by_role("alert")).to_have_count(0)


@pytest.mark.browser
def test_page_is_responsive(browser: Browser, preview_settings: Settings) -> None:
    with running(preview_settings) as server, new_page(browser, 400, 800) as page:
        page.goto(server.url)
        desktop = page.locator("iframe.desktop").bounding_box()
        mobile = page.locator("iframe.mobile").bounding_box()
        assert desktop and mobile
        assert mobile["y"] >= desktop["y"] + desktop["height"]  # the frames wrap
        # The desktop frame keeps its 640 px and scrolls inside its box; the page does not.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


# ---- the CLI -------------------------------------------------------------------------------


def test_cli_preview_serves_and_stops_cleanly_on_sigint(
    preview_settings: Settings, expected: Expected
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", SLUG, "--no-open", "--port", str(port)],
        cwd=preview_settings.issues_dir.parent,  # the folder holding issues/ and templates/
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Read stdout in a thread: a blocking readline() could hang the test forever.
        lines: queue.Queue[str] = queue.Queue()
        stdout = process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout])
        reader.daemon = True
        reader.start()
        first = lines.get(timeout=30)
        url = f"http://127.0.0.1:{port}/"
        assert first.rstrip("\n") == f"Previewing {SLUG} at {url} — Ctrl-C to stop"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            assert response.status == 200
            assert html.escape(expected.subject) in response.read().decode()

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=TIMEOUT) == 0
        reader.join(TIMEOUT)
        assert process.stderr is not None
        stderr = process.stderr.read()
        assert "Traceback" not in stderr, stderr
        rest = []
        while not lines.empty():
            rest.append(lines.get())
        assert "Stopped.\n" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
