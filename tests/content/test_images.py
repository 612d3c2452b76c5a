"""Local pictures with real files (made by Pillow in tests/support/images_data.py): prepared upright,
small and without metadata; embedded as multipart/related parts that two independent parsers
read with every cid: resolving; hosted in the archive and checked online over real HTTP on
127.0.0.1 before a real send (to a real aiosmtpd server) may go."""

from __future__ import annotations

import email
import email.policy
import functools
import hashlib
import http.server
import io
import os
import re
import threading
import urllib.request
from dataclasses import replace
from pathlib import Path

import fast_mail_parser
import pytest
from PIL import Image, ImageDraw
from support.helpers import QuietHandler, newsletter, web_server
from support.images_data import (
    GPS_IFD,
    detailed_photo,
    iphone_photo,
    not_a_picture,
    phone_photo,
    transparent_logo,
)
from support.smtp_servers import PASSWORD, USERNAME, RecordingHandler, start_server

from newsletter.common.config import Settings, load_settings
from newsletter.common.errors import ConfigError, IssueError
from newsletter.common.limits import EMBED_WARN_BYTES
from newsletter.content import images
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity

FRONT = "---\ntitle: Pictures\nsubject: Pictures from the social\npreheader: A month in pictures from our members, with the December social.\ndate: 2024-02-01\n---\n"
PHOTO_ALT = "Members at our December social"
LOGO_ALT = "The cluster's round logo"


def write_issue(project: Path, body: str, slug: str = "pictures") -> str:
    (project / "issues" / f"{slug}.md").write_text(FRONT + body, encoding="utf-8")
    return slug


@pytest.fixture
def pictured(project: Path) -> str:
    """An issue with a sideways phone photo, a transparent PNG and a remote https picture."""
    folder = project / "issues" / "images"
    folder.mkdir()
    phone_photo(folder / "social.jpg")
    transparent_logo(folder / "round logo.png")
    return write_issue(
        project,
        "## The social\n\nWe met.\n\n"
        f"![{PHOTO_ALT}](images/social.jpg)\n\n"
        f"![{LOGO_ALT}](<images/round logo.png>)\n\n"
        "![A chart of members](https://cdn.wmhtc.co.uk/chart.png)\n",
    )


# ---- preparing ------------------------------------------------------------------------------


def test_phone_photo_is_upright_scaled_and_stripped(tmp_path: Path) -> None:
    source = phone_photo(tmp_path / "social.jpg")
    with Image.open(source) as original:  # the test file really carries what must go
        assert original.size == (4000, 3000)
        assert original.getexif()[0x0112] == 6 and original.getexif().get_ifd(GPS_IFD)
        assert original.info.get("icc_profile")
    prepared = images.prepare(source)
    assert prepared.mime == "image/jpeg"
    assert prepared.name == hashlib.sha256(prepared.data).hexdigest()[:20] + ".jpg"
    with Image.open(io.BytesIO(prepared.data)) as result:
        assert result.format == "JPEG"
        # Upright: portrait, and the red band stored on the left edge is now along the top.
        assert result.size == (1200, 1600) == (prepared.width, prepared.height)
        top, bottom = result.getpixel((600, 40)), result.getpixel((600, 1500))
        assert top[0] > 180 and top[2] < 80, top
        assert bottom[2] > 180 and bottom[0] < 80, bottom
        assert len(result.getexif()) == 0 and "exif" not in result.info
        assert "icc_profile" not in result.info and "xmp" not in result.info
    for trace in (b"Exif", b"PhoneMaker", b"Pocket Camera"):
        assert trace not in prepared.data
    assert prepared.display_size() == (544, 725)


def test_iphone_heic_photo_is_read_upright_and_sent_as_a_stripped_jpeg(tmp_path: Path) -> None:
    source = iphone_photo(tmp_path / "IMG_0042.HEIC")
    assert source.read_bytes()[4:12] == b"ftypheic"  # a real HEIC file, not a renamed JPEG
    prepared = images.prepare(source)
    assert prepared.mime == "image/jpeg" and prepared.name.endswith(".jpg")
    with Image.open(io.BytesIO(prepared.data)) as result:
        assert result.format == "JPEG"
        assert result.size == (1200, 1600)  # upright (portrait), rotated once, not twice
        top, bottom = result.getpixel((600, 40)), result.getpixel((600, 1500))
        assert top[0] > 180 and top[2] < 80, top
        assert bottom[2] > 180 and bottom[0] < 80, bottom
        assert len(result.getexif()) == 0 and "exif" not in result.info
    for trace in (b"Exif", b"PhoneMaker", b"Pocket Camera"):
        assert trace not in prepared.data


def test_an_issue_with_an_iphone_photo_is_ready_and_carries_it(
    project: Path, ready: Settings
) -> None:
    folder = project / "issues" / "images"
    folder.mkdir()
    iphone_photo(folder / "IMG_0042.HEIC", 1200, 900)
    slug = write_issue(project, f"## The social\n\n![{PHOTO_ALT}](images/IMG_0042.HEIC)\n")
    report = run_checks(campaign_mod.prepare(ready, slug))
    assert not report.errors and report.verdict().startswith("READY"), report.verdict()
    camp = campaign_mod.prepare(ready, slug)
    result = campaign_mod.dry_run(camp, ready.outbox / slug, head=None)
    first = sorted(result.out_dir.glob("*.eml"))[0]
    msg = email.message_from_bytes(first.read_bytes(), policy=email.policy.default)
    assert tree(msg)[-1] == "image/jpeg"
    with Image.open(io.BytesIO(list(msg.walk())[-1].get_content())) as shown:
        assert shown.size == (900, 1200)


def test_transparency_stays_png_and_small_pictures_are_not_enlarged(tmp_path: Path) -> None:
    prepared = images.prepare(transparent_logo(tmp_path / "logo.png"))
    assert prepared.mime == "image/png" and prepared.name.endswith(".png")
    with Image.open(io.BytesIO(prepared.data)) as result:
        assert result.mode == "RGBA" and result.size == (360, 120)
        assert result.getpixel((0, 0))[3] == 0 and result.getpixel((180, 60))[3] == 255
    assert prepared.display_size() == (360, 120)
    assert prepared.display_size(images.LOGO_WIDTH) == (180, 60)


def test_large_photo_is_scaled_to_1200_and_renamed_when_it_changes(tmp_path: Path) -> None:
    path = detailed_photo(tmp_path / "crowd.jpg", 4000, 2600)
    first = images.prepare(path)
    assert (first.width, first.height) == (1200, 780) and first.mime == "image/jpeg"
    assert images.prepare(path) is first  # prepared once, then cached while unchanged
    detailed_photo(path, 4000, 2600, seed=2)
    os.utime(path, ns=(1, 1))
    second = images.prepare(path)
    assert second.name != first.name


# ---- check ------------------------------------------------------------------------------------


def test_check_reports_missing_unreadable_and_undescribed_pictures(
    project: Path, ready: Settings
) -> None:
    folder = project / "issues" / "images"
    folder.mkdir()
    not_a_picture(folder / "fake.jpg")
    transparent_logo(folder / "ok.png")
    slug = write_issue(
        project,
        "Intro.\n\n![A photo](images/missing.jpg)\n\n![A fake](images/fake.jpg)\n\n"
        "![](images/ok.png)\n\n![Inline](data:image/png;base64,iVBORw0KGgo=)\n",
    )
    report = run_checks(campaign_mod.prepare(ready, slug))
    errors = [f"{f.where}: {f.message}" for f in report.errors]
    path = project / "issues" / "pictures.md"
    assert any(e.startswith(f"{path}:9: image ") and "missing.jpg not found" in e for e in errors)
    assert any(e.startswith(f"{path}:11: ") and "is not an image" in e for e in errors)
    assert f"{path}:13: image images/ok.png has no alt text" in errors
    assert any(e.startswith(f"{path}:15: ") and "data: URI" in e for e in errors)
    assert report.verdict().startswith("NOT READY")
    # Outputs that would show a broken picture refuse with the file and line.
    with pytest.raises(IssueError, match=r"pictures\.md:9: image .*missing\.jpg not found"):
        campaign_mod.dry_run(campaign_mod.prepare(ready, slug), ready.outbox / slug)


def test_check_warns_when_embedded_pictures_weigh_over_a_megabyte(
    project: Path, ready: Settings
) -> None:
    folder = project / "issues" / "images"
    folder.mkdir()
    body = "Intro.\n\n"
    for n in range(3):
        detailed_photo(folder / f"crowd{n}.jpg", 2400, 1800, seed=n)
        body += f"![Crowd {n}](images/crowd{n}.jpg)\n\n"
    camp = campaign_mod.prepare(ready, write_issue(project, body))
    weight = sum(len(image.data) for _, image in camp.rendered.inline_images)
    assert weight * 4 / 3 > EMBED_WARN_BYTES  # the fixture is heavy enough
    warned = [f.message for f in run_checks(camp).findings if f.severity == Severity.WARNING]
    assert any("embedded pictures add" in m and "MB to every message" in m for m in warned)
    assert camp.rendered.html_bytes < 100 * 1024  # the Gmail figure counts the HTML only


# ---- embed --------------------------------------------------------------------------------------


def tree(part) -> list[str]:
    return [p.get_content_type() for p in part.walk()]


def test_embedded_messages_parse_with_every_cid_resolving(
    project: Path, ready: Settings, pictured: str
) -> None:
    assert ready.image_mode == "embed"
    camp = campaign_mod.prepare(ready, pictured)
    result = campaign_mod.dry_run(camp, ready.outbox / pictured, head=None)
    files = sorted(result.out_dir.glob("*.eml"))
    assert result.written == len(files) > 1
    for path in files:
        data = path.read_bytes()
        assert data.count(b"\n") == data.count(b"\r\n")
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert not msg.defects and all(not p.defects for p in msg.walk())
        assert tree(msg) == [
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html",
            "image/jpeg",
            "image/png",
        ]
        related = msg.get_payload()[1]
        assert related.get_param("type") == "text/html"
        html = related.get_payload()[0].get_content()
        parts = {p["Content-ID"].strip("<>"): p for p in related.get_payload()[1:]}
        cids = set(re.findall(r'src="cid:([^"]+)"', html))
        assert cids == set(parts) and len(cids) == 2
        assert "data:" not in html
        assert 'src="https://cdn.wmhtc.co.uk/chart.png"' in html  # remote: left as it is
        photo = re.search(r"<img[^>]*alt=\"" + PHOTO_ALT + r'"[^>]*>', html).group(0)
        assert 'width="544"' in photo and 'height="725"' in photo and "height:auto" in photo
        for cid, part in parts.items():
            assert part.get_content_disposition() == "inline"
            with Image.open(io.BytesIO(part.get_content())) as shown:
                assert shown.width <= 1200 and len(shown.getexif()) == 0
            assert cid.startswith(hashlib.sha256(part.get_content()).hexdigest()[:20])
        text = msg.get_payload()[0].get_content()
        assert f"[Image: {PHOTO_ALT}]" in text and f"[Image: {LOGO_ALT}]" in text
        # The second, independent parser (Rust mailparse) sees the same tree and parts.
        root = fast_mail_parser.parse_email_tree(data)
        assert root.content_type == "multipart/alternative"
        kinds = [c.content_type for c in root.children]
        assert kinds == ["text/plain", "multipart/related"]
        inner = root.children[1].children
        assert [c.content_type for c in inner] == ["text/html", "image/jpeg", "image/png"]
        assert {c.content_id.strip("<>") for c in inner[1:]} == cids
        parsed = fast_mail_parser.parse_email(data)
        assert {a.content_id.strip("<>") for a in parsed.attachments} == cids
        assert "cid:" in parsed.text_html[0]
    # The clip figure is the HTML; the message carries the pictures on top.
    assert result.images_bytes > 0
    assert camp.message_bytes() > camp.rendered.html_bytes + result.images_bytes
    assert result.largest_bytes > result.html_bytes + result.images_bytes


def test_local_logo_is_prepared_and_sized(project: Path, ready: Settings) -> None:
    transparent_logo(project / "templates" / "logo.png", 720, 240)
    toml = project / "templates" / "organisation.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('logo_url = ""', 'logo_url = "logo.png"'),
        encoding="utf-8",
    )
    camp = campaign_mod.prepare(ready, "december-2023")
    html = camp.rendered.html
    (cid, logo), *_ = camp.rendered.inline_images
    assert logo.mime == "image/png" and f'src="cid:{cid}"' in html
    tag = re.search(r'<img[^>]*src="cid:[^"]+"[^>]*>', html).group(0)
    assert 'width="180"' in tag and 'height="60"' in tag
    (project / "templates" / "logo.png").unlink()
    report = run_checks(campaign_mod.prepare(ready, "december-2023"))
    assert any(
        "organisation.toml" in f.where and "not found" in f.message and "templates folder" in f.fix
        for f in report.errors
    )


# ---- hosted -------------------------------------------------------------------------------------


def test_hosted_pictures_must_be_published_before_a_real_send(
    project: Path, pictured: str, tmp_path: Path
) -> None:
    (project / "recipients.csv").write_text(
        "email,first_name\na@nghealth.uk,A\nb@nghealth.uk,B\n", encoding="utf-8"
    )
    webroot = tmp_path / "webroot"
    with (
        web_server(webroot) as archive_url,
        start_server(RecordingHandler(), tls="starttls", auth=True, cafile_dir=tmp_path) as smtp,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        env.update(
            NEWSLETTER_SMTP_HOST=smtp.host, NEWSLETTER_SMTP_PORT=str(smtp.port),
            NEWSLETTER_SMTP_CAFILE=smtp.cafile or "", NEWSLETTER_SMTP_USERNAME=USERNAME,
            NEWSLETTER_SMTP_PASSWORD=PASSWORD, NEWSLETTER_FROM="Cluster News <news@wmhtc.co.uk>",
            NEWSLETTER_UNSUBSCRIBE_URL="https://wmhtc.co.uk/u?e={email}&t={token}",
            NEWSLETTER_SECRET="test-secret-long-enough", NEWSLETTER_ARCHIVE_URL=archive_url,
            PYTHONPATH=os.environ.get("PYTHONPATH", ""),
        )  # fmt: skip
        settings = load_settings(env, dotenv_path=None)
        assert settings.image_mode == "hosted"

        dry = newsletter(project, env, "send", pictured, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stderr.count("is not online at") == 2 and "publish the archive" in dry.stderr
        check = newsletter(project, env, "check", pictured)
        assert check.returncode == 1 and check.stdout.count("publish the archive first") == 2
        refused = newsletter(project, env, "send", pictured, "--yes")
        assert refused.returncode == 2 and "publish the archive first" in refused.stderr
        assert smtp.handler.count() == 0

        built = newsletter(project, env, "archive", "--out", str(webroot / "news"))
        assert built.returncode == 0, built.stderr
        assets = sorted(p.name for p in (webroot / "news" / "assets").iterdir())
        assert len(assets) == 2 and assets[0].endswith((".jpg", ".png"))
        sent = newsletter(project, env, "send", pictured, "--yes")
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert re.search(r"Size: +message [\d.]+ KB, HTML [\d.]+ KB", sent.stdout)
        assert smtp.handler.copies() == {"a@nghealth.uk": 1, "b@nghealth.uk": 1}

        msg = email.message_from_bytes(smtp.handler.messages[0].data, policy=email.policy.default)
        assert tree(msg) == ["multipart/alternative", "text/plain", "text/html"]
        html = msg.get_payload()[1].get_content()
        urls = re.findall(r'<img[^>]*src="(' + re.escape(archive_url) + r'assets/[^"]+)"', html)
        assert sorted(u.rsplit("/", 1)[1] for u in urls) == assets
        for url in urls:  # what a member's mail client will fetch
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.status == 200
                kind = "image/png" if url.endswith(".png") else "image/jpeg"
                assert response.headers["Content-Type"] == kind
                with Image.open(io.BytesIO(response.read())) as shown:
                    assert shown.width <= 1200


def test_head_check_reports_wrong_type_and_no_answer(
    project: Path, ready: Settings, pictured: str
) -> None:
    answers = {".jpg": (200, "text/html; charset=utf-8"), ".png": (0, "")}
    asked: list[tuple[str, float]] = []

    def head(url: str, timeout: float) -> tuple[int, str]:
        asked.append((url, timeout))
        return answers[url[-4:]]

    hosted = replace(ready, archive_url="https://news.example.org/archive")
    camp = campaign_mod.prepare(hosted, pictured)
    offline = camp.offline_images(head)
    assert sorted(o.why for o in offline) == ["no answer", "served as text/html"]
    assert all(u.startswith("https://news.example.org/archive/assets/") for u, _ in asked)
    assert all(0 < timeout <= 10 for _, timeout in asked)
    assert 'src="https://news.example.org/archive/assets/' in camp.rendered.html
    assert "cid:" not in camp.rendered.html and camp.rendered.inline_images == ()


def test_images_setting() -> None:
    assert load_settings({}, dotenv_path=None).image_mode == "embed"
    hosted = load_settings({"NEWSLETTER_ARCHIVE_URL": "https://x.org/a"}, dotenv_path=None)
    assert hosted.image_mode == "hosted"
    forced = {"NEWSLETTER_ARCHIVE_URL": "https://x.org/a", "NEWSLETTER_IMAGES": "embed"}
    assert load_settings(forced, dotenv_path=None).image_mode == "embed"
    with pytest.raises(ConfigError, match="NEWSLETTER_IMAGES: hosted images need"):
        load_settings({"NEWSLETTER_IMAGES": "hosted"}, dotenv_path=None)
    with pytest.raises(ConfigError, match="NEWSLETTER_IMAGES: must be hosted or embed"):
        load_settings({"NEWSLETTER_IMAGES": "inline"}, dotenv_path=None)


def test_render_writes_the_pictures_beside_the_html(
    project: Path, settings: Settings, pictured: str
) -> None:
    from newsletter.web.preview import render_files

    html_path, _, _ = render_files(settings, pictured, project / "build")
    html = html_path.read_text(encoding="utf-8")
    shown = re.findall(r'src="assets/([0-9a-f]{20}\.(?:jpg|png))"', html)
    assert len(shown) == 2 and "cid:" not in html
    for name in shown:
        assert (project / "build" / "assets" / name).is_file()
    (project / "issues" / "images" / "social.jpg").unlink()
    with pytest.raises(IssueError, match=r"pictures\.md:\d+: image .*social\.jpg not found"):
        render_files(settings, pictured, project / "build")


def test_fixed_pixel_heights_become_auto_but_the_attribute_stays() -> None:
    from newsletter.content.render import scalable_images

    tag = '<img height="300" width="544" style="max-height:9px;line-height:3px;height:300px;width:100%">'
    assert scalable_images(tag) == tag.replace("height:300px", "height:auto")
    remote = '<img height="auto" style="height:auto;width:100%">'
    assert scalable_images(remote) == remote


def test_http_head_against_a_real_server(tmp_path: Path) -> None:
    from newsletter.content.published import http_head

    class NoHead(QuietHandler):
        def do_HEAD(self) -> None:  # noqa: N802 - some servers refuse HEAD
            self.send_error(405)

    transparent_logo(tmp_path / "logo.png")
    with web_server(tmp_path) as base:
        root = base.removesuffix("news/")
        assert http_head(root + "logo.png", 5) == (200, "image/png")
        assert http_head(root + "missing.png", 5)[0] == 404
    handler = functools.partial(NoHead, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert http_head(f"http://127.0.0.1:{httpd.server_address[1]}/logo.png", 5) == (
            200,
            "image/png",
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert http_head(root + "logo.png", 2)[0] == 0  # the server is gone: no answer


def test_a_logo_in_the_brand_colour_is_reported_as_invisible_on_the_header_band(
    project: Path, ready: Settings
) -> None:
    # Most organisations' logos are drawn in their brand colour on a transparent background;
    # the header band is that colour, so the logo vanished from every email unnoticed.
    logo = project / "templates" / "logo.png"
    transparent_logo(logo)  # drawn in #0b4f6c, the default colours.brand
    toml = project / "templates" / "organisation.toml"
    text = toml.read_text(encoding="utf-8").replace('logo_url = ""', 'logo_url = "logo.png"')
    toml.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("logo_url"))

    def logo_findings() -> list[str]:
        report = run_checks(campaign_mod.prepare(ready, "december-2023"))
        return [f.line() for f in report.warnings if f.check == "logo-contrast"]

    (found,) = logo_findings()
    assert f"organisation.toml:{line}: logo_url logo.png: 100 % of the logo" in found
    assert "colours.brand #0b4f6c" in found and "white or light version" in found
    # The same logo in white (the version made for dark backgrounds) shows: no warning.
    white = Image.new("RGBA", (360, 120), (0, 0, 0, 0))
    ImageDraw.Draw(white).ellipse((10, 10, 350, 110), fill=(255, 255, 255, 255))
    white.save(logo)
    assert logo_findings() == []
    # A logo with its own (opaque) background is never hidden by the band behind it.
    Image.new("RGB", (360, 120), (11, 79, 108)).save(logo)
    assert logo_findings() == []
