"""What tripped a chair trying local pictures end to end, with real files, a real SMTP server
and real Chromium: a file name with spaces, a tiny picture blown up on a phone, and a test
copy sent with a broken picture."""

from __future__ import annotations

import email
import email.policy
import io
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from support.images_data import phone_photo
from support.smtp_servers import RecordingHandler, start_server

from newsletter.common.config import Settings
from newsletter.common.errors import IssueError
from newsletter.content import model
from newsletter.content.issue import load_issue
from newsletter.web.preview import render_files

FRONT = "---\ntitle: Pictures\nsubject: Pictures from the social\npreheader: A month in pictures from our members, with the December social.\ndate: 2030-02-01\n---\n"


def write_issue(project: Path, body: str, slug: str = "pictures") -> str:
    (project / "issues" / f"{slug}.md").write_text(FRONT + body, encoding="utf-8")
    return slug


def image_blocks(issue: model.Issue) -> list[model.Image]:
    return [b for b in issue.all_blocks() if isinstance(b, model.Image)]


# ---- a file name with spaces ----------------------------------------------------------------


def test_picture_file_name_with_spaces_is_a_picture_not_literal_text(
    project: Path, settings: Settings
) -> None:
    """Phones and cameras name files 'Team Photo.JPG' or 'IMG 0042 (1).jpg'. CommonMark only
    accepts such a path between <…>; written plainly, the chair got the raw Markdown as
    text in every message, and check said READY."""
    folder = project / "issues" / "Images"
    folder.mkdir()
    Image.new("RGB", (1600, 1067), (30, 120, 60)).save(folder / "Team Photo.JPG", "JPEG")
    Image.new("RGB", (800, 600), (120, 30, 60)).save(folder / "IMG 0042 (1).jpg", "JPEG")
    slug = write_issue(
        project,
        "## Awards\n\n![The team at the awards](Images/Team Photo.JPG)\n\n"
        '![A second photo](Images/IMG 0042 (1).jpg "At the dinner")\n',
    )
    issue = load_issue(slug, settings.issues_dir)
    blocks = image_blocks(issue)
    assert [(b.alt, b.line) for b in blocks] == [
        ("The team at the awards", 9),
        ("A second photo", 11),
    ]
    assert blocks[1].title == "At the dinner"
    out = project / "out"
    render_files(settings, slug, out)
    html = (out / f"{slug}.html").read_text(encoding="utf-8")
    text = (out / f"{slug}.txt").read_text(encoding="utf-8")
    assert "](Images/" not in html and "![" not in text
    assert "[Image: The team at the awards]" in text
    sources = re.findall(r'<img[^>]*src="(assets/[^"]+)"', html)
    assert len(sources) == 2 and all((out / s).is_file() for s in sources)


def test_a_line_that_only_looks_like_a_picture_is_an_error_with_the_line(
    project: Path, settings: Settings
) -> None:
    slug = write_issue(project, "## Awards\n\n![The team at the awards](<Images/Team Photo.JPG)\n")
    with pytest.raises(
        IssueError, match=r"pictures\.md:9: this line looks like a picture"
    ) as raised:
        load_issue(slug, settings.issues_dir)
    assert "![what the picture shows](images/photo.jpg)" in str(raised.value.hint)
    # A file: URL (Markdown refuses those) gets the path advice.
    write_issue(project, "## Awards\n\n![The team](file:///C:/Users/chair/Pictures/team.jpg)\n")
    with pytest.raises(
        IssueError, match=r"pictures\.md:9: this line looks like a picture"
    ) as raised:
        load_issue(slug, settings.issues_dir)
    assert "relative to the issue file" in str(raised.value.hint)


# ---- a test copy never carries a broken picture ----------------------------------------------


def cli(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def smtp_env(smtp_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_SMTP_HOST="127.0.0.1", NEWSLETTER_SMTP_PORT=str(smtp_port),
        NEWSLETTER_SMTP_SECURITY="none", NEWSLETTER_FROM="Cluster News <news@wmhtc.co.uk>",
        NEWSLETTER_TEST_TO="chair@wmhtc.co.uk", PYTHONPATH=os.environ.get("PYTHONPATH", ""),
        **extra,
    )  # fmt: skip
    return env


def test_test_copy_refuses_a_missing_picture_like_every_other_output(project: Path) -> None:
    folder = project / "issues" / "images"
    folder.mkdir()
    phone_photo(folder / "social.jpg", 1600, 1200)
    slug = write_issue(
        project,
        "## The social\n\n![Members at our December social](images/social.jpg)\n\n"
        "![The venue](images/venue.jpg)\n",
    )
    with start_server(RecordingHandler()) as smtp:
        result = cli(project, smtp_env(smtp.port), "send", slug, "--test")
        assert result.returncode == 2, result.stdout + result.stderr
        assert "pictures.md:11: image" in result.stderr and "venue.jpg not found" in result.stderr
        assert "Traceback" not in result.stderr
        assert smtp.handler.count() == 0


def test_hosted_test_copy_says_which_pictures_are_not_online(project: Path) -> None:
    """The chair looks at the test copy to see the pictures: with hosted pictures not yet
    published it shows broken images, so say why (it is still sent: it is only a test)."""
    folder = project / "issues" / "images"
    folder.mkdir()
    phone_photo(folder / "social.jpg", 1600, 1200)
    slug = write_issue(
        project, "## The social\n\n![Members at our December social](images/social.jpg)\n"
    )
    with start_server(RecordingHandler()) as smtp:
        # Nothing listens on port 9 of 127.0.0.1 (discard): "no answer", at once.
        env = smtp_env(smtp.port, NEWSLETTER_ARCHIVE_URL="http://127.0.0.1:9/news")
        result = cli(project, env, "send", slug, "--test")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "social.jpg is not online at http://127.0.0.1:9/news/assets/" in result.stderr
        assert "publish the archive first" in result.stderr
        assert smtp.handler.count() == 1
        msg = email.message_from_bytes(smtp.handler.messages[0].data, policy=email.policy.default)
        assert msg["Subject"].startswith("[TEST] ")


# ---- small pictures are never blown up ------------------------------------------------------


@pytest.mark.browser
def test_small_pictures_keep_their_size_on_a_phone(
    project: Path, settings: Settings, browser
) -> None:
    """fluid-on-mobile stretched every picture to the phone's column: a 16 px icon became a
    264 px blurry block at 320 px. Pictures narrower than the phone column keep their size;
    wider ones shrink to it and none overflows."""
    from support.browser import new_page

    folder = project / "issues" / "images"
    folder.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(folder / "tiny.png")
    Image.new("RGB", (200, 100), (30, 30, 200)).save(folder / "badge.png")
    Image.new("RGB", (400, 300), (30, 200, 30)).save(folder / "chart.png")
    phone_photo(folder / "social.jpg", 1600, 1200)
    slug = write_issue(
        project,
        "## The social\n\n![A red dot](images/tiny.png)\n\n![A badge](images/badge.png)\n\n"
        "![A chart](images/chart.png)\n\n![Members at our social](images/social.jpg)\n",
    )
    settings = replace(settings, unsubscribe_url="https://example.org/u?e={email}", secret="k")
    out = project / "out"
    render_files(settings, slug, out)
    page_url = (out / f"{slug}.html").as_uri()
    shown = "() => Object.fromEntries(Array.from(document.images).map(i => [i.alt, [i.naturalWidth, i.getBoundingClientRect().width, i.getBoundingClientRect().right]]))"
    for width in (320, 600):
        with new_page(browser, width) as page:
            page.goto(page_url)
            page.wait_for_load_state("load")
            sizes = page.evaluate(shown)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            assert sizes["A red dot"][:2] == [16, 16], (width, sizes)
            assert sizes["A badge"][:2] == [200, 200], (width, sizes)
            for alt in ("A chart", "Members at our social"):
                natural, shown_width, right = sizes[alt]
                assert 0 < shown_width <= min(natural, 544) and right <= width, sizes
                if width == 320:
                    assert shown_width == 264, sizes  # the whole phone column


# ---- very large photos ----------------------------------------------------------------------


def test_a_200_megapixel_phone_photo_is_prepared_without_a_warning(project: Path) -> None:
    """Phones shoot 108 MP and 200 MP photos (16,320 × 12,240). Pillow's decompression-bomb
    guard refused them as "not an image Pillow can read (… DOS attack)" and printed a
    DecompressionBombWarning over 89 MP; decoded at 1/8 scale, they cost little.
    (Grey, to keep the test's own memory small; decoding is the same as for colour.)"""
    folder = project / "issues" / "images"
    folder.mkdir()
    Image.new("L", (16320, 12240), 90).save(folder / "huge.jpg", quality=50)
    Image.new("L", (10000, 10000), 90).save(folder / "huge.png")
    slug = write_issue(project, "## The view\n\n![The campus from the roof](images/huge.jpg)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    result = cli(project, env, "render", slug, "--out", "out")
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "bomb" not in result.stderr.lower()
    (prepared,) = (project / "out" / "assets").iterdir()
    with Image.open(prepared) as shown:
        assert shown.size == (1200, 900)
    # A picture too large to decode whole is refused with its size and what to do.
    write_issue(project, "## The view\n\n![The campus from the roof](images/huge.png)\n")
    result = cli(project, env, "check", slug)
    assert result.returncode == 1
    assert (
        "pictures.md:9: " in result.stdout and "10000 × 10000 px (100 megapixels)" in result.stdout
    )
    assert "save a smaller copy" in result.stdout and "DOS" not in result.stdout


# ---- the archive publishes every picture an email may load -----------------------------------


def test_archive_keeps_the_pictures_of_emails_already_sent(
    project: Path, settings: Settings
) -> None:
    """Hosted emails load NEWSLETTER_ARCHIVE_URL/assets/<hash>: once sent, that file must stay.
    Rebuilding the archive after a picture changed (an edit, a crop, a newer Pillow encoding
    it differently) deleted the old file and broke every email already in members' inboxes."""
    from newsletter.web.archive import build_archive

    folder = project / "issues" / "images"
    folder.mkdir()
    Image.new("RGB", (900, 600), (120, 30, 160)).save(folder / "ward.webp", "WEBP")
    write_issue(project, "## The ward\n\n![The new ward](images/ward.webp)\n")
    site = project / "site"
    build_archive(settings, site)
    (first,) = (site / "assets").iterdir()
    Image.new("RGB", (900, 600), (20, 140, 90)).save(folder / "ward.webp", "WEBP")
    build_archive(settings, site)
    names = sorted(p.name for p in (site / "assets").iterdir())
    assert len(names) == 2 and first.name in names
    assert re.search(
        r'src="assets/(?!' + first.name + r')[0-9a-f]{20}\.jpg"',
        (site / "pictures.html").read_text(),
    )


def test_pictures_of_an_issue_kept_out_of_the_archive_are_still_published(
    project: Path, settings: Settings
) -> None:
    """With archive: false (or draft: true) the issue has no page, but a hosted email of it
    still loads its pictures from assets/: 'publish the archive first' could never be met."""
    from newsletter.web.archive import build_archive

    folder = project / "issues" / "images"
    folder.mkdir()
    Image.new("RGB", (900, 600), (120, 30, 160)).save(folder / "ward.webp", "WEBP")
    front = FRONT.replace("date: 2030-02-01\n", "date: 2030-02-01\narchive: false\n")
    (project / "issues" / "members-only.md").write_text(
        front + "## The ward\n\n![The new ward](images/ward.webp)\n", encoding="utf-8"
    )
    # A draft still missing a picture does not stop the archive (it is not published).
    draft = FRONT.replace("date: 2030-02-01\n", "date: 2030-02-01\ndraft: true\n")
    (project / "issues" / "draft.md").write_text(
        draft + "## Soon\n\n![Soon](images/not-yet.jpg)\n", encoding="utf-8"
    )
    site = project / "site"
    build_archive(settings, site)
    assert not (site / "members-only.html").exists() and not (site / "draft.html").exists()
    (asset,) = (site / "assets").iterdir()
    with Image.open(asset) as shown:
        assert shown.size == (900, 600)


def test_a_16_bit_greyscale_scan_is_not_turned_white(tmp_path: Path) -> None:
    """A 16-bit greyscale PNG (how scans and imaging software export) came out as a blank
    white picture: every value above 255 was clipped."""
    from newsletter.content import images

    scan = Image.new("I;16", (600, 400), 40000)  # 61 % grey
    scan.paste(Image.new("I;16", (300, 400), 10000), (0, 0))  # left half darker: 15 % grey
    scan.save(tmp_path / "scan.png")
    with Image.open(tmp_path / "scan.png") as stored:
        assert stored.mode.startswith("I") and stored.getextrema() == (10000, 40000)
    prepared = images.prepare(tmp_path / "scan.png")
    with Image.open(io.BytesIO(prepared.data)) as shown:
        dark, light = (
            shown.convert("L").getpixel((100, 200)),
            shown.convert("L").getpixel((500, 200)),
        )
    assert abs(dark - 39) <= 2 and abs(light - 156) <= 2, (dark, light)


# ---- animations and multi-picture JPEGs -------------------------------------------------------


def test_an_animated_gif_is_named_as_showing_its_first_frame_only(
    project: Path, settings: Settings
) -> None:
    """An animated GIF became a still PNG of its first frame without a word."""
    from newsletter.sending import campaign as campaign_mod
    from newsletter.sending.checks import run_checks
    from newsletter.sending.checks.findings import Severity

    folder = project / "issues" / "images"
    folder.mkdir()
    colours = ((200, 30, 30), (30, 200, 30), (30, 30, 200))
    frames = [Image.new("RGB", (400, 300), colour) for colour in colours]
    frames[0].save(
        folder / "slides.gif", save_all=True, append_images=frames[1:], duration=300, loop=0
    )
    # A phone's MPO photo (a JPEG with a second picture) is no animation.
    first, second = Image.new("RGB", (800, 600), (200, 30, 30)), Image.new("RGB", (800, 600))
    first.save(folder / "depth.jpg", "MPO", save_all=True, append_images=[second])
    slug = write_issue(
        project,
        "## Slides\n\n![Our three slides](images/slides.gif)\n\n![A photo](images/depth.jpg)\n",
    )
    settings = replace(
        settings,
        from_="Cluster News <news@example.org>",
        unsubscribe_url="https://example.org/u?e={email}",
        secret="k",
    )
    camp = campaign_mod.prepare(settings, slug)
    warnings = [
        (f.where, f.message)
        for f in run_checks(camp, http_head=None).findings
        if f.severity == Severity.WARNING
    ]
    path = project / "issues" / "pictures.md"
    assert (
        f"{path}:9",
        "images/slides.gif is an animation (3 frames): the email shows its first frame only "
        "(Outlook would show no more)",
    ) in warnings
    assert not any("depth.jpg" in message for _, message in warnings)
    photo = camp.rendered.pictures.images["images/depth.jpg"]
    assert photo.mime == "image/jpeg" and (photo.width, photo.height) == (800, 600)


def test_a_picture_named_with_other_capitals_or_backslashes_says_which_file_was_meant(
    project: Path, settings: Settings
) -> None:
    """Written on a Mac or Windows as images/Social.JPG or images\\social.jpg, the picture
    shows there and is 'not found' on Linux and on the web server: name the right file."""
    from newsletter.sending import campaign as campaign_mod
    from newsletter.sending.checks import run_checks

    folder = project / "issues" / "images"
    folder.mkdir()
    phone_photo(folder / "social.jpg", 1600, 1200)
    slug = write_issue(
        project,
        "## The social\n\n![Members at our social](Images/Social.JPG)\n\n"
        "![Members again](images\\social.jpg)\n\n![The venue](images/venue.jpg)\n",
    )
    settings = replace(settings, from_="News <news@example.org>", secret="k")
    report = run_checks(campaign_mod.prepare(settings, slug), http_head=None)
    by_line = {f.where.rsplit(":", 1)[1]: f.fix for f in report.errors if "not found" in f.message}
    meant = f"did you mean {folder / 'social.jpg'}?"
    assert by_line["9"].startswith(meant) and "capitals" in by_line["9"]
    if os.sep == "/":
        assert by_line["11"].startswith(meant)
    assert by_line["13"] == "image paths are relative to the issue file, e.g. images/social.jpg"


# ---- a picture that is a link ----------------------------------------------------------------


def test_a_picture_can_be_a_link(project: Path, settings: Settings) -> None:
    """[![Register for the Expo](images/banner.jpg)](https://…) — the clickable banner every
    bulletin has — was refused with 'an image must stand on a line of its own (put a blank
    line before and after it)', which it did and which did not help."""
    from newsletter.sending import campaign as campaign_mod
    from newsletter.sending.checks import run_checks
    from newsletter.sending.checks.findings import Severity

    folder = project / "issues" / "images"
    folder.mkdir()
    Image.new("RGB", (1200, 400), (20, 40, 200)).save(folder / "banner.jpg", "JPEG")
    slug = write_issue(
        project,
        "## The Expo\n\n[![Register for the Expo](images/banner.jpg)](https://www.wmhtc.co.uk/expo)\n\n"
        "[![Click here](images/banner.jpg)](http://www.wmhtc.co.uk/old)\n",
    )
    (first, second) = image_blocks(load_issue(slug, settings.issues_dir))
    assert (first.alt, first.href, first.line) == (
        "Register for the Expo",
        "https://www.wmhtc.co.uk/expo",
        9,
    )
    out = project / "out"
    render_files(settings, slug, out)
    html = (out / f"{slug}.html").read_text(encoding="utf-8")
    assert re.search(
        r'<a href="https://www\.wmhtc\.co\.uk/expo"[^>]*>\s*<img alt="Register for the Expo"', html
    )
    text = (out / f"{slug}.txt").read_text(encoding="utf-8")
    assert "[Image: Register for the Expo]" in text and "https://www.wmhtc.co.uk/expo" in text
    # Its link is checked like any other.
    settings = replace(settings, from_="News <news@example.org>", secret="k")
    warnings = [
        f"{f.where}: {f.message}"
        for f in run_checks(campaign_mod.prepare(settings, slug), http_head=None).findings
        if f.severity == Severity.WARNING
    ]
    assert any(w.endswith(':11: link "Click here" uses http://') for w in warnings), warnings
    assert any(
        w.endswith(':11: link text "Click here" does not say where it goes') for w in warnings
    )
