"""Content model → MJML (Jinja2) → HTML (mjml-python) → inlined CSS (premailer); and the
plain-text part. All of it runs once per issue; member fields stay as slot tokens.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.errors import TemplateError
from ..common.limits import GMAIL_CLIP_BYTES  # noqa: F401 - re-exported: tests and callers import it here
from . import images, model
from .emailhtml import HTML_TEMPLATE, MJML_LINE, check_mjml, mjml_to_html, strip_markers
from .frontmatter import key_line
from .inlines import FIELD_RE, field_of
from .linktags import LinkTagger
from .organisation import Organisation, load_organisation
from .plaintext import TextWriter, underline
from .slots import Filled, RecipientStandIn, Slot, SlotTable

TEXT_TEMPLATE = "email.txt.j2"


@dataclass
class RenderedIssue:
    """One issue, rendered once; ``html``/``text``/``subject`` hold member slot tokens."""

    issue: model.Issue
    org: Organisation
    html: str
    text: str
    subject: str
    slots: SlotTable
    view_online_url: str = ""
    pictures: images.Pictures | None = None
    # (Content-ID, image) of each picture the HTML shows as ``cid:`` (NEWSLETTER_IMAGES=embed).
    inline_images: tuple[tuple[str, images.PreparedImage], ...] = ()

    def __post_init__(self) -> None:
        self.html_filled = Filled(self.html, self.slots.pattern)
        self.text_filled = Filled(self.text, self.slots.pattern)
        self.subject_filled = Filled(self.subject, self.slots.pattern)

    @property
    def subject_display(self) -> str:
        """The subject for summaries: as written when it holds member fields."""
        return self.issue.subject if self.subject_filled.has_slots else self.subject

    def personalise(self, fields: dict[str, str]) -> tuple[str, str, str]:
        """(subject, html, text) for one member's fields; values are escaped for HTML."""
        values = self.slots.values(fields)
        return (
            self.subject_filled.fill(values),
            self.html_filled.fill(values, _escape),
            self.text_filled.fill(values),
        )

    def sample(self) -> tuple[str, str, str]:
        """The issue as a member with no known name would see it (preview, archive)."""
        return self.personalise({"unsubscribe_url": "#unsubscribe"})

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def _subject(issue: model.Issue, templates_dir: Path, org: Organisation, slots: SlotTable) -> str:
    """The subject line with member fields as slot tokens."""
    subject_env = environment(templates_dir, autoescape=False)
    try:
        # Member fields (with their fallbacks) become slots before Jinja sees the subject:
        # Jinja would test the stand-in token, never the member's empty value.
        def token(match: re.Match[str]) -> str:
            field = field_of(match)
            return slots.token(Slot(field.name, fallback=field.fallback))

        source = FIELD_RE.sub(token, issue.subject)
        subject_template = subject_env.from_string(source)
        subject = subject_template.render(
            recipient=RecipientStandIn(slots, str), issue=issue, org=org
        )
    except Exception as exc:  # noqa: BLE001 - any Jinja error in the subject line
        raise TemplateError(
            f"subject: {_jinja_message(exc)}",
            path=issue.path,
            line=key_line(issue.source, "subject"),
        ) from None
    return " ".join(subject.split())


def sample_subject(issue: model.Issue, templates_dir: Path, org: Organisation) -> str:
    """The subject as a member with no known name sees it (``list``), without rendering
    the whole issue: ``{{ recipient.first_name or 'Members' }}`` reads "Members"."""
    slots = SlotTable()
    return Filled(_subject(issue, templates_dir, org, slots), slots.pattern).fill(slots.values({}))


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


def render_issue(
    issue: model.Issue,
    templates_dir: Path,
    *,
    has_unsubscribe: bool = True,
    view_online_url: str = "",
    link_tagger: LinkTagger | None = None,
    org: Organisation | None = None,
    archive: bool = False,
    pictures: images.Pictures | None = None,
    image_base: str = images.ASSETS + "/",
    embed: bool = False,
) -> RenderedIssue:
    """Render ``issue`` through the templates in ``templates_dir``.

    Local images (``pictures``, resolved once per issue by :func:`images.resolve`) are shown
    from ``image_base`` + their prepared file name, or with ``embed`` as ``cid:`` references
    to inline parts of the message. Without ``pictures`` their paths stay as written."""
    org = org or load_organisation(templates_dir)
    picture, inline = _picture_lookup(pictures, image_base, embed, org.domain)
    slots = SlotTable()
    tagger = link_tagger or LinkTagger.off()

    def link_url(href: str) -> str:
        return tagger.tag(href)

    from markupsafe import Markup

    def field_token(node: model.Field) -> str:
        return slots.token(Slot(node.name, fallback=node.fallback))

    subject = _subject(issue, templates_dir, org, slots)

    # The preheader (hidden text after the subject in the inbox) takes member fields as the
    # subject does; the web edition fills them with their fallbacks.
    def preheader_token(match: re.Match[str]) -> str:
        field = field_of(match)
        return slots.token(Slot(field.name, fallback=field.fallback))

    preheader = FIELD_RE.sub(preheader_token, issue.preheader)
    writer = TextWriter(url=link_url, field=field_token)
    context: dict[str, Any] = {
        # The <title>: member fields are slot tokens here; the web edition uses the title.
        "subject": Markup(html.escape(issue.title if archive else subject)),
        "issue": issue,
        "preheader": Markup(html.escape(" ".join(preheader.split()))),
        "org": org,
        "recipient": RecipientStandIn(slots, Markup),
        "unsubscribe_url": Markup(slots.token(Slot("unsubscribe_url"))),
        "has_unsubscribe": has_unsubscribe,
        "view_online_url": "" if archive else view_online_url,
        "archive": archive,  # the web edition: no greeting, no member links
        "greeting": _greeting(org, slots, Markup),
        # Per-render helpers, reached by the context filters below (the Environment is
        # shared and cached, so nothing render-specific may live on it).
        "_link_url": link_url,
        "_field": field_token,
        "_writer": writer,
        "_picture": picture,
    }
    env = environment(templates_dir)
    mjml_source, origins = strip_markers(render_template(env, HTML_TEMPLATE, context))
    check_mjml(mjml_source, origins)
    cache = env.bytecode_cache  # its private folder also keeps inlined documents
    final_html = scalable_images(
        mjml_to_html(
            mjml_source, origins, cache_dir=getattr(cache, "directory", None), nonce=slots.nonce
        )
    )

    text_context = dict(
        context,
        recipient=RecipientStandIn(slots, str),
        unsubscribe_url=slots.token(Slot("unsubscribe_url")),
        greeting=_greeting(org, slots, str),
        subject=subject,
        references=writer.references,
        wrap=writer.wrap,
        link=writer.labelled,
    )
    text = render_template(env, TEXT_TEMPLATE, text_context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    return RenderedIssue(
        issue=issue,
        org=org,
        html=final_html,
        text=text,
        subject=subject,
        slots=slots,
        view_online_url=view_online_url,
        pictures=pictures,
        inline_images=tuple(inline.items()),
    )


def _picture_lookup(
    pictures: images.Pictures | None, base: str, embed: bool, domain: str
) -> tuple[Callable[..., images.Picture], dict[str, images.PreparedImage]]:
    """The ``picture`` filter for this render, and the inline parts the HTML refers to
    (filled while the template renders: only pictures it really shows travel along)."""
    inline: dict[str, images.PreparedImage] = {}

    def url(image: images.PreparedImage) -> str:
        if not embed:
            return base + image.name
        cid = images.content_id(image, domain)
        inline.setdefault(cid, image)
        return "cid:" + cid

    def picture(src: str, logo: bool = False) -> images.Picture:
        found = None
        if pictures is not None:
            found = pictures.logo if logo else pictures.images.get(src)
        if found is None:  # an https URL (left as it is), or no local images resolved
            return images.Picture(src)
        width, height = found.logo_size() if logo else found.display_size(images.COLUMN_WIDTH)
        return images.Picture(url(found), width, height)

    return picture, inline


_IMG = re.compile(r"<img\b[^>]*>")
_FIXED_HEIGHT = re.compile(r"(style=\"(?:[^\"]*?;)?\s*)height:\s*\d+px")  # not max-height


def scalable_images(document: str) -> str:
    """Keep the ``height`` attribute (Outlook on Windows sizes images by it) but let CSS scale
    the image with its width (``height:auto``): MJML would fix the height in px, which
    squashes a picture that shrinks to a phone's width."""
    return _IMG.sub(
        lambda m: (
            _FIXED_HEIGHT.sub(r"\1height:auto", m.group(0))
            if re.search(r'\sheight="\d+"', m.group(0))
            else m.group(0)
        ),
        document,
    )


def _greeting(org: Organisation, slots: SlotTable, markup: Callable[[str], Any]) -> Any:
    if not org.greeting:
        return ""
    return markup(slots.token(Slot("first_name", fmt=org.greeting, fallback=org.greeting_fallback)))


# ---- Jinja2 --------------------------------------------------------------------------------


_ENVIRONMENTS: dict[tuple[Path, str, bool | None], Any] = {}


def environment(templates_dir: Path, autoescape: bool | None = None):
    """A cached Environment per templates folder: compiling the templates costs more than
    rendering them. ``auto_reload`` still picks up edited templates (for the preview)."""
    # The loader keeps the folder as given (messages name it so): a relative one is read
    # from the current folder at each render, so the spelling is part of the key too, or a
    # later call naming the same folder absolutely from elsewhere would get a loader that
    # reads another folder's templates.
    key = (templates_dir.resolve(), str(templates_dir), autoescape)
    if key not in _ENVIRONMENTS:
        _ENVIRONMENTS[key] = _new_environment(templates_dir, autoescape)
    return _ENVIRONMENTS[key]


def _new_environment(templates_dir: Path, autoescape: bool | None):
    import jinja2
    import jinja2.ext
    from markupsafe import Markup

    class LineMarkers(jinja2.ext.Extension):
        """Tags each template line that starts an MJML tag with its file and line, so that
        errors found in the generated MJML can name the template line (see _locate)."""

        def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
            if not (filename or name or "").endswith(".mjml.j2"):
                return source
            where = filename or name
            return "".join(
                f"\x00{where}|{number}\x00{line}" if MJML_LINE.match(line) else line
                for number, line in enumerate(source.splitlines(keepends=True), start=1)
            )

    if not templates_dir.is_dir():
        raise TemplateError(
            "templates folder not found",
            path=templates_dir,
            hint="run from the folder that holds templates/, or set NEWSLETTER_TEMPLATES_DIR",
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        # Autoescape everything except the plain-text templates.
        autoescape=(
            jinja2.select_autoescape(disabled_extensions=("txt.j2", "txt"), default=True)
            if autoescape is None
            else autoescape
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
        extensions=[LineMarkers],
        bytecode_cache=_code_cache(),
    )
    for kind in (
        "Paragraph",
        "BulletList",
        "Quote",
        "Facts",
        "Button",
        "Image",
        "SubHeading",
        "Table",
    ):
        cls = getattr(model, kind)
        env.tests[kind.lower()] = lambda value, cls=cls: isinstance(value, cls)
    env.filters["plain"] = model.plain
    env.filters["components"] = components
    env.filters["underline"] = underline
    env.filters["inline"] = jinja2.pass_context(
        lambda ctx, nodes: Markup(_inline_html(nodes, ctx["_link_url"], ctx["_field"]))
    )
    env.filters["url"] = jinja2.pass_context(lambda ctx, href: ctx["_link_url"](href))
    env.tests["grid"] = table_fits
    env.tests["rtl"] = lambda block: any(reads_rtl(model.plain(item)) for item in block.items)
    env.filters["text_table"] = jinja2.pass_context(lambda ctx, table: ctx["_writer"].table(table))
    env.filters["picture"] = jinja2.pass_context(
        lambda ctx, src, logo=False: ctx["_picture"](src, logo)
    )
    env.filters["text"] = jinja2.pass_context(
        lambda ctx, nodes, *args: ctx["_writer"].paragraph(nodes, *args)
    )
    return env


def _code_cache() -> Any:
    """Compiled templates kept between runs: compiling them was ~120 ms of every fresh
    ``render``/``check``/``send`` (10 ms to load). Jinja's own per-user temporary folder
    (created private, its owner checked); one file per template name, whose code is used
    only for the same file with the same text, compiled by this version of this module
    and of Jinja (LineMarkers writes the file's path into it). None (compile each time)
    where no such folder can be had."""
    import jinja2
    from jinja2.bccache import Bucket, FileSystemBytecodeCache

    salt = hashlib.sha256(Path(__file__).read_bytes() + jinja2.__version__.encode()).hexdigest()

    class TemplateCode(FileSystemBytecodeCache):
        def get_bucket(self, environment: Any, name: str, filename: str | None, source: str) -> Any:
            checksum = self.get_source_checksum(f"{salt}\0{filename}\0{source}")
            bucket = Bucket(environment, self.get_cache_key(name), checksum)
            self.load_bytecode(bucket)
            return bucket

        def dump_bytecode(self, bucket: Any) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass  # a full or read-only disk: the next run compiles again

    try:
        return TemplateCode(pattern="__newsletter_%s.cache")
    except (RuntimeError, OSError):  # no private temporary folder to be had
        return None


def components(blocks: list[model.Block]) -> list[tuple[str, Any]]:
    """Group blocks into MJML components: runs of text blocks share one ``mj-text``."""
    out: list[tuple[str, Any]] = []
    for block in blocks:
        if isinstance(block, model.Button):
            out.append(("button", block))
        elif isinstance(block, model.Image):
            out.append(("image", block))
        elif out and out[-1][0] == "text":
            out[-1][1].append(block)
        else:
            out.append(("text", [block]))
    return out


def render_template(env: Any, name: str, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax: {exc.message}", path=exc.filename or name, line=exc.lineno
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {exc.name} not found", path=Path(env.loader.searchpath[0]) / str(exc.name)
        ) from None
    except TemplateError:
        raise
    except Exception as exc:  # noqa: BLE001 - UndefinedError, TypeError in a filter, …
        path, line = _template_frame(exc)
        raise TemplateError(_jinja_message(exc), path=path or name, line=line) from None


def _jinja_message(exc: BaseException) -> str:
    import jinja2

    if isinstance(exc, jinja2.UndefinedError):
        return f"unknown template variable: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """Jinja rewrites tracebacks to point at template lines: take the innermost one."""
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


# ---- tables --------------------------------------------------------------------------------

TABLE_WIDTH = 544  # px: the column (600 minus 2 × 28 px padding); a table's columns share it
CELL_PADDING = 17  # px: 2 × 8 px padding and a 1 px border
CHAR_WIDTH = 9  # px: a generous average letter of 15 px (bold) Arial
LONGEST_WORD = 16  # letters: a longer token (a URL, an address) breaks in any layout


def table_fits(table: model.Table) -> bool:
    """Whether the table reads as a grid in the column: its columns are equal
    (table-layout: fixed), and each must hold its longest word. An 8-column table broke
    "Company" into "Compa|ny" on a desktop; such a table shows as the phone's "Label: value"
    blocks at every width instead (Outlook, without that CSS, keeps the grid)."""
    columns = max([len(table.header), *(len(row) for row in table.rows)])
    room = TABLE_WIDTH / max(1, columns) - CELL_PADDING
    for row in [table.header, *table.rows]:
        for cell in row:
            for word in re.split(r"\s+|(?<=-)", model.plain(cell)):
                if min(len(word), LONGEST_WORD) * CHAR_WIDTH > room:
                    return False
    return True


def reads_rtl(text: str) -> bool:
    """Whether ``text`` reads right to left as dir="auto" decides: by its first strong letter
    (Arabic, Hebrew, … against Latin and the rest)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


# ---- inline HTML ---------------------------------------------------------------------------


def _inline_html(
    nodes: tuple[model.Inline, ...],
    url: Callable[[str], str],
    field: Callable[[model.Field], str] = lambda node: html.escape(node.fallback),
) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, model.Field):
            out.append(field(node))
        elif isinstance(node, model.Text):
            out.append(html.escape(node.text, quote=False))
        elif isinstance(node, model.Code):
            out.append(f"<code>{html.escape(node.text, quote=False)}</code>")
        elif isinstance(node, model.LineBreak):
            out.append("<br />")
        elif isinstance(node, model.Emphasis):
            tag = "strong" if node.strong else "em"
            out.append(f"<{tag}>{_inline_html(node.children, url, field)}</{tag}>")
        elif isinstance(node, model.Link):
            title = f' title="{html.escape(node.title)}"' if node.title else ""
            out.append(
                f'<a href="{html.escape(url(node.href))}"{title}>'
                f"{_inline_html(node.children, url, field)}</a>"
            )
    return "".join(out)


# ---- MJML ----------------------------------------------------------------------------------

# The MJML components our templates may use; mjml-python silently copies unknown tags.
