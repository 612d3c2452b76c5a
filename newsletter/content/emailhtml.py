"""From the MJML a template generated to the email's HTML: the MJML checked (mjml-python
validates nothing: unknown or unbalanced tags), errors named at the template line that made
them (see ``render.LineMarkers``), MJML turned into HTML (mjml-python) and the marked CSS
inlined (premailer)."""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path

from ..common.errors import TemplateError

HTML_TEMPLATE = "email.mjml.j2"


MJML_TAGS = frozenset(
    """mjml mj-head mj-body mj-attributes mj-all mj-class mj-breakpoint mj-font mj-preview
    mj-style mj-title mj-raw mj-section mj-column mj-group mj-wrapper mj-text mj-button
    mj-image mj-divider mj-spacer mj-table mj-social mj-social-element mj-navbar
    mj-navbar-link mj-hero mj-accordion mj-accordion-element mj-accordion-title
    mj-accordion-text mj-carousel mj-carousel-image mj-include""".split()
)
_TAG_RE = re.compile(r"<(/?)(mj[a-z-]*)\b[^>]*?(/?)>", re.S)
_ENDING_TAGS = frozenset(
    {
        "mj-text",
        "mj-button",
        "mj-table",
        "mj-raw",
        "mj-navbar-link",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-social-element",
        "mj-style",
        "mj-title",
        "mj-preview",
    }
)


MJML_LINE = re.compile(r"\s*</?mj")
_MARKER = re.compile(r"\x00([^\x00|]*)\|(\d+)\x00")


def strip_markers(marked: str) -> tuple[str, dict[int, tuple[str, int]]]:
    """Remove the LineMarkers tags; return the MJML and {generated line: (template, line)}."""
    origins: dict[int, tuple[str, int]] = {}
    lines = marked.split("\n")
    for number, line in enumerate(lines, start=1):
        if "\x00" in line:
            match = _MARKER.search(line)
            if match:
                origins[number] = (match.group(1), int(match.group(2)))
            lines[number - 1] = _MARKER.sub("", line)
    return "\n".join(lines), origins


def check_mjml(source: str, origins: dict[int, tuple[str, int]]) -> None:
    """Fail loudly on what mjml-python would silently get wrong: unknown or unbalanced tags."""
    stack: list[tuple[str, int]] = []
    for match in _TAG_RE.finditer(source):
        closing, name, self_closing = match.groups()
        line = source.count("\n", 0, match.start()) + 1
        if name not in MJML_TAGS:
            raise _mjml_error(f"unknown MJML tag <{name}>", source, line, origins)
        if stack and stack[-1][0] in _ENDING_TAGS and not (closing and name == stack[-1][0]):
            continue  # inside an ending tag: its content is HTML, not MJML
        if self_closing:
            continue
        if not closing:
            stack.append((name, line))
        elif not stack or stack[-1][0] != name:
            expected = f"</{stack[-1][0]}>" if stack else "nothing"
            raise _mjml_error(
                f"</{name}> does not match: expected {expected}", source, line, origins
            )
        else:
            stack.pop()
    if stack:
        name, line = stack[-1]
        raise _mjml_error(f"<{name}> is never closed", source, line, origins)


def _mjml_error(
    message: str, source: str, line: int, origins: dict[int, tuple[str, int]]
) -> TemplateError:
    """Name the template line that produced generated line ``line`` (or the nearest above)."""
    for candidate in range(line, 0, -1):
        if candidate in origins:
            template, template_line = origins[candidate]
            return TemplateError(f"MJML: {message}", path=template, line=template_line)
    text = source.splitlines()[line - 1].strip() if source else ""
    return TemplateError(
        f"MJML: {message} (generated MJML line {line}: {text[:60]!r})", path=HTML_TEMPLATE
    )


def mjml_to_html(
    source: str,
    origins: dict[int, tuple[str, int]] | None = None,
    *,
    cache_dir: str | None = None,
    nonce: str = "",
) -> str:
    """The email's HTML; ``cache_dir`` and ``nonce``: see :func:`inline_css`."""
    from mjml import mjml2html

    try:
        raw = mjml2html(source, disable_comments=True)
    except ValueError as exc:
        line = _line_of_position(source, str(exc))
        raise _mjml_error(str(exc), source, line, origins or {}) from None
    return inline_css(raw, cache_dir=cache_dir, nonce=nonce)


def _line_of_position(source: str, message: str) -> int:
    match = re.search(r"position (\d+)", message)
    if not match:
        return 1
    return source.encode("utf-8")[: int(match.group(1))].count(b"\n") + 1


@functools.cache
def _without_css_validation() -> None:
    """premailer validates each element's inline style even with disable_validation (its
    merge_styles parses them with cssutils' default, validate=True); validating changes
    nothing in the output (invalid values are kept, the warnings are silenced) but first
    compiles cssutils' property grammars, ~55 ms of CPU per process. Without profiles,
    cssutils knows no property to validate. premailer is cssutils' only user here."""
    import cssutils

    cssutils.profile.removeProfile(all=True)


INLINE_MARKER = "/* inline */"
_STYLE_OPEN = re.compile(r"<style\b[^>]*>")


INLINED_KEPT = 16  # inlined documents kept in the cache folder (an issue being edited makes many)
_INLINER = ("premailer", "cssutils", "lxml")  # what the inlined HTML depends on, with this module


def inline_css(document: str, *, cache_dir: str | None = None, nonce: str = "") -> str:
    """premailer, configured for email: offline, keeps media queries, MSO blocks, doctype.

    ``cache_dir`` (a private folder: the compiled templates' one): the result is kept there
    and reused for the same document inlined by the same code (this module and premailer's,
    cssutils' and lxml's installed files): a fresh ``render``/``check``/``send`` of an issue
    inlined before then neither imports premailer nor runs it (~0.3 s of CPU). None, or a
    folder that cannot be used: inlined every time. ``nonce``: the random part of this
    render's member-field tokens (a new one each render, see ``slots``), inlined as a fixed
    stand-in of the same length and put back after: opaque letters and digits to premailer,
    they are kept out of what the cache is keyed on."""
    if cache_dir is None:
        return _inline(document)
    stand_in = "0" * len(nonce)
    if nonce and stand_in not in document:
        inlined = inline_css(document.replace(nonce, stand_in), cache_dir=cache_dir)
        return inlined.replace(stand_in, nonce)
    import hashlib
    import os
    import sys
    from importlib.util import find_spec

    digest = hashlib.sha256(Path(__file__).read_bytes() + sys.version.encode())
    for name in _INLINER:
        spec = find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is None:
            return _inline(document)  # not installed: let the import say so
        info = os.stat(origin)  # reinstalled or upgraded: another file
        digest.update(f"\0{origin}\0{info.st_mtime_ns}\0{info.st_size}".encode())
    digest.update(b"\0" + document.encode("utf-8"))
    folder = Path(cache_dir)
    path = folder / f"__newsletter_inlined_{digest.hexdigest()[:40]}.html"
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    out = _inline(document)
    try:
        kept = sorted(folder.glob("__newsletter_inlined_*.html"), key=_modified)
        for old in kept[: max(0, len(kept) - INLINED_KEPT + 1)]:
            old.unlink(missing_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(out, encoding="utf-8")
        os.replace(partial, path)  # whole or absent for a reader in another process
    except OSError:
        pass  # a full or read-only disk, a race with another process: inlined next time
    return out


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _inline(document: str) -> str:
    import premailer

    _without_css_validation()
    # Inline only our own `mj-style inline="inline"` rules (marked in the template). MJML's
    # reset styles (`table, td {…}`, `p {…}`) belong in <head>: inlined into every cell they
    # would add ~25 KB and push a long issue towards Gmail's 102 KB clip.
    document = _STYLE_OPEN.sub(
        lambda m: (
            m.group(0)
            if INLINE_MARKER in document[m.end() : m.end() + 200]
            else m.group(0)[:-1] + ' data-premailer="ignore">'
        ),
        document,
    )
    try:
        out = premailer.transform(
            document,
            allow_network=False,
            strip_important=False,  # media-query rules need their !important
            keep_style_tags=True,  # @media blocks stay in <style>
            remove_classes=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
            # Font @imports would make cssutils resolve URLs (DNS) even offline.
            exclude_pseudoclasses=True,
        )
    except Exception as exc:  # noqa: BLE001 - premailer raises many kinds
        raise TemplateError(f"CSS inlining failed: {exc}", path=HTML_TEMPLATE) from None
    # premailer drops MRML's lower-case doctype (it expects lxml's upper-case form).
    if not out.lstrip().lower().startswith("<!doctype"):
        out = "<!doctype html>\n" + out
    return out
