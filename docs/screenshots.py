"""Re-make the documentation's screenshots (docs/images/*.png) from the built-in examples.

    python docs/screenshots.py            # from the repository root

What it does: copies the repository's ``templates/``, ``issues/december-2023.md``,
``recipients.csv.example`` and the writing guide's example issue
(``docs/guide/writing-example.issue``) into a temporary project folder, runs this checkout's
``newsletter`` there (``preview --out`` for the email HTML, the live ``preview`` server for
the preview page), and photographs the results with headless Chromium driven by Playwright:

- ``email-desktop-and-phone.png``: the December email at 800 px and 375 px, side by side
  (the README's picture);
- ``email-desktop.png`` / ``email-phone.png``: the top of the December email at each width;
- ``preview-page.png``: the page ``newsletter preview`` serves;
- ``writing-example.png`` / ``writing-example-phone.png``: the writing guide's example issue
  (sections, articles, key facts, a button, a table) as members see it.

Needs the ``test`` extra (Playwright) and Debian's Chromium at /usr/bin/chromium (or the path
in ``NEWSLETTER_TEST_CHROMIUM``); it never downloads a browser and sends no mail. The PNGs are
cropped, scaled and reduced to a 256-colour palette with Pillow to stay small (under 150 KB).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
EXAMPLE_ISSUE = ROOT / "docs" / "guide" / "writing-example.issue"
CHROMIUM = Path(os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium"))
# As root Chromium needs --no-sandbox; the rest keep it off the network (as tests/support does).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = 800
PHONE = 375
MAX_BYTES = 150_000


def newsletter(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run this checkout's newsletter in ``project`` (PYTHONPATH: not whatever is installed)."""
    env = _env()
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # The example list stands in for the members, so the preview greets a member by name.
    env["NEWSLETTER_RECIPIENTS"] = "recipients.csv.example"
    return env


def make_project(folder: Path) -> Path:
    """A project folder holding the built-in examples only."""
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "issues").mkdir()
    shutil.copy(ROOT / "issues" / "december-2023.md", folder / "issues")
    shutil.copy(EXAMPLE_ISSUE, folder / "issues" / "writing-example.md")
    shutil.copy(ROOT / "recipients.csv.example", folder)
    return folder


@contextmanager
def live_preview(project: Path, slug: str) -> Iterator[str]:
    """``newsletter preview SLUG --no-open`` in the background; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", slug, "--no-open"],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Previewing ") and " at http://" in line:
                yield line.split(" at ", 1)[1].split()[0]
                return
        raise RuntimeError(f"newsletter preview did not start (exit {process.wait()})")
    finally:
        process.terminate()  # our own child, by its handle
        process.wait(timeout=10)


def shoot(browser, url: str, width: int, *, height: int = 900, full: bool = True) -> bytes:
    """A PNG of ``url`` at a viewport ``width`` CSS px wide."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        time.sleep(0.5)  # let the iframes of the preview page paint
        return page.screenshot(full_page=full)
    finally:
        context.close()


def save(image, name: str, *, max_width: int | None = None) -> None:
    """Scale down to ``max_width``, reduce to a palette and write docs/images/NAME."""
    from PIL import Image

    image = image.convert("RGB")
    if max_width and image.width > max_width:
        ratio = max_width / image.width
        image = image.resize((max_width, round(image.height * ratio)), Image.LANCZOS)
    for colours in (256, 128, 64):
        data = BytesIO()
        image.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(
            data, "PNG", optimize=True
        )
        if data.tell() <= MAX_BYTES:
            break
    IMAGES.mkdir(parents=True, exist_ok=True)
    (IMAGES / name).write_bytes(data.getvalue())
    print(f"docs/images/{name}: {image.width}×{image.height}, {data.tell() // 1024} KB")


def side_by_side(*images):
    """The images in a row, each with a thin border, on a light grey ground."""
    from PIL import Image, ImageOps

    pad = 24
    framed = [ImageOps.expand(image.convert("RGB"), border=1, fill="#9aa5b1") for image in images]
    width = sum(image.width for image in framed) + pad * (len(framed) + 1)
    height = max(image.height for image in framed) + 2 * pad
    ground = Image.new("RGB", (width, height), "#e4e7eb")
    x = pad
    for image in framed:
        ground.paste(image, (x, pad))
        x += image.width + pad
    return ground


def crop_height(image, height: int):
    return image.crop((0, 0, image.width, min(height, image.height)))


def main() -> None:
    import argparse

    # No options: --help says what the script does (its docstring) instead of running it.
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    if not CHROMIUM.exists():
        sys.exit(
            f"{CHROMIUM} not found: apt-get install -y chromium (or set NEWSLETTER_TEST_CHROMIUM)"
        )
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="newsletter-screenshots-") as tmp:
        project = make_project(Path(tmp))
        newsletter(project, "preview", "december-2023", "--out", "december.html")
        newsletter(project, "preview", "writing-example", "--out", "example.html")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                december = (project / "december.html").as_uri()
                example = (project / "example.html").as_uri()
                desktop = Image.open(BytesIO(shoot(browser, december, DESKTOP)))
                phone = Image.open(BytesIO(shoot(browser, december, PHONE)))
                example_desktop = Image.open(BytesIO(shoot(browser, example, DESKTOP)))
                example_phone = Image.open(BytesIO(shoot(browser, example, PHONE)))
                with live_preview(project, "december-2023") as url:
                    preview = Image.open(BytesIO(shoot(browser, url, 1120, height=860, full=False)))
            finally:
                browser.close()

    # The README's picture: the same top of the email at both widths, side by side, each
    # framed on a light grey ground as a window and a phone would show it.
    save(
        side_by_side(crop_height(desktop, 1000), crop_height(phone, 1000)),
        "email-desktop-and-phone.png",
        max_width=1000,
    )
    save(crop_height(desktop, 1400), "email-desktop.png", max_width=800)
    save(crop_height(phone, 1600), "email-phone.png")
    save(preview, "preview-page.png", max_width=1000)
    save(example_desktop, "writing-example.png", max_width=800)
    save(example_phone, "writing-example-phone.png")


if __name__ == "__main__":
    main()
