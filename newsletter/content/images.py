"""Local pictures, made fit for email: found beside the issue, prepared once with Pillow.

An image in an issue is either an https URL (left exactly as it is) or a file path relative
to the issue file (``images/social.jpg`` next to ``issues/december-2023.md``); the
organisation's ``logo_url`` may also be a file, relative to the templates folder. Each local
file is

- read as JPEG, PNG, GIF, WebP, BMP, TIFF or HEIC (iPhone photos; through pillow-heif);
- turned upright from its EXIF orientation flag (phones store photos sideways plus a flag);
- stripped of every piece of metadata (EXIF with GPS position, camera, owner; XMP; comments),
  its colours converted to sRGB when it carried a colour profile;
- scaled down to at most 1,200 px wide (twice the 600 px column, for sharp high-density
  screens; never enlarged);
- saved as PNG where transparency is used or the picture is a flat graphic (a logo, a chart),
  else as JPEG;
- named by a hash of the prepared bytes (``3f2a…c1.jpg``), so a changed picture gets a new
  name and no cache anywhere can serve the old one.

Where the email then points (``cid:`` of an inline part, the web archive's ``assets/``, a
relative path for the preview) is decided by the caller; this module only prepares.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..common.errors import IssueError, TemplateError
from ..common.files import atomic_write
from . import model
from .organisation import FILE_NAME as ORGANISATION_FILE
from .organisation import Organisation

MAX_WIDTH = 1200  # px: twice the 600 px column
COLUMN_WIDTH = 544  # px an image may take in the email: 600 minus 2 × 28 px padding
# px of the column on the narrowest phone (320 px screen minus 2 × 28 px padding): a picture
# wider than this is stretched to the phone's column (fluid-on-mobile) so it never overflows;
# a narrower one keeps its own size (stretched, a 16 px icon became a blurry 264 px block).
PHONE_COLUMN_WIDTH = 264
LOGO_WIDTH = 180  # px, as the header has always shown the logo
# A very wide wordmark (1,600 × 100) at 180 px was 11 px tall, its lettering unreadable; a
# tall one (200 × 800) filled the header. A logo is widened (up to the phone column, so it
# never overflows) until it is LOGO_MIN_HEIGHT tall, and narrowed to LOGO_MAX_HEIGHT.
LOGO_MIN_HEIGHT = 40
LOGO_MAX_HEIGHT = LOGO_WIDTH  # a square logo keeps the 180 × 180 it always had
# Pictures larger than this are refused with a clear message before decoding. A JPEG is
# decoded at 1/8 scale (draft mode), so a 200 MP phone photo (16,320 × 12,240) costs little;
# other formats are decoded whole (4 bytes a pixel). Pillow's own "decompression bomb" guard
# (a warning past 89 MP, an error past 179 MP) refused such phone photos as "not an image";
# ours replaces it, right after the header is read, with limits and words that fit.
JPEG_MAX_PIXELS = 300_000_000
OTHER_MAX_PIXELS = 90_000_000
JPEG_QUALITY = 82
ANIMATED = frozenset({"GIF", "PNG", "WEBP"})  # formats whose extra frames are an animation
FLAT_COLOURS = 1024  # at most this many colours without alpha: a graphic, kept lossless
ASSETS = "assets"  # folder of prepared images in the web archive and beside rendered files
ASSET_NAME = re.compile(r"[0-9a-f]{20}\.(?:jpg|png)")  # PreparedImage.name


@dataclass(frozen=True)
class PreparedImage:
    """One picture, ready to be published or embedded."""

    source: Path
    data: bytes
    mime: str  # image/jpeg or image/png
    width: int  # px of the prepared file
    height: int
    digest: str
    frames: int = 1  # of the original: an animation is prepared as its first frame

    @property
    def name(self) -> str:
        return f"{self.digest}.{'png' if self.mime == 'image/png' else 'jpg'}"

    def display_size(self, max_width: int = COLUMN_WIDTH) -> tuple[int, int]:
        """The width and height attributes for the email: the column at most, never enlarged
        (a 1,200 px file shows at 544 px and stays sharp on high-density screens)."""
        width = min(self.width, max_width)
        return width, max(1, round(self.height * width / self.width))

    def logo_size(self) -> tuple[int, int]:
        """The header logo's width and height: LOGO_WIDTH wide as a rule, wider (at most the
        phone column) when that would make it under LOGO_MIN_HEIGHT tall, narrower when it
        would be over LOGO_MAX_HEIGHT; never enlarged past the file's own size."""
        ratio = self.width / self.height
        width = max(LOGO_WIDTH, round(LOGO_MIN_HEIGHT * ratio))
        width = min(width, PHONE_COLUMN_WIDTH, round(LOGO_MAX_HEIGHT * ratio), self.width)
        width = max(1, width)
        return width, max(1, round(width / ratio))


@dataclass(frozen=True)
class ImageProblem:
    """A local image that cannot be used: where it is written, and what is wrong."""

    src: str
    path: Path  # the file that names the image (the issue, or organisation.toml)
    line: int | None
    message: str
    hint: str

    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else str(self.path)

    def error(self) -> IssueError | TemplateError:
        cls = TemplateError if self.path.name == ORGANISATION_FILE else IssueError
        return cls(self.message, path=self.path, line=self.line, hint=self.hint)


@dataclass(frozen=True)
class Picture:
    """What a template needs to show one image: its URL and, for local files, its size."""

    src: str
    width: int | None = None
    height: int | None = None

    @property
    def fluid(self) -> bool:
        """Shown at the phone column's full width on a phone: only pictures wider than the
        narrowest phone column, so none is enlarged past its size there."""
        return self.width is not None and self.width > PHONE_COLUMN_WIDTH


@dataclass
class Pictures:
    """Every local image of one issue (and the logo), resolved once per issue."""

    images: dict[str, PreparedImage] = field(default_factory=dict)  # src as written → file
    logo: PreparedImage | None = None
    problems: list[ImageProblem] = field(default_factory=list)
    watched: list[Path] = field(default_factory=list)  # every local file named, even missing

    @property
    def prepared(self) -> list[PreparedImage]:
        """Each distinct prepared file once, in the order the issue uses them."""
        seen: dict[str, PreparedImage] = {}
        for image in [*([self.logo] if self.logo else []), *self.images.values()]:
            seen.setdefault(image.name, image)
        return list(seen.values())

    def require(self) -> None:
        """Raise the first problem: for outputs that cannot show a broken picture."""
        if self.problems:
            raise self.problems[0].error()


def is_local(src: str) -> bool:
    """A path to a file (not a URL with a scheme, nor a protocol-relative one)."""
    src = src.strip()
    # One letter before a colon is a Windows drive (C:\\photos\\x.jpg), not a URL scheme.
    return bool(src) and not src.startswith("//") and len(urlsplit(src).scheme) <= 1


def local_path(src: str, base: Path) -> Path:
    # markdown-it percent-encodes link targets (a space becomes %20): undo it for the file.
    return base / unquote(src.strip())


def resolve(issue: model.Issue, org: Organisation, templates_dir: Path) -> Pictures:
    """Find and prepare every local image of ``issue`` and the organisation's logo.

    Never raises for a bad picture: problems are collected (``check`` lists them all);
    outputs that need every picture call :meth:`Pictures.require`."""
    pictures = Pictures()
    base = issue.path.parent
    for block in issue.all_blocks():
        if not isinstance(block, model.Image):
            continue
        if block.src.strip().lower().startswith("data:"):
            pictures.problems.append(
                ImageProblem(
                    block.src[:40],
                    issue.path,
                    block.line,
                    "image is a data: URI, which Gmail drops",
                    "save it as a file beside the issue and write its path",
                )
            )
            continue
        if not is_local(block.src) or block.src in pictures.images:
            continue
        path = local_path(block.src, base)
        pictures.watched.append(path)
        prepared = _prepare_or_problem(block.src, path, issue.path, block.line, pictures)
        if prepared is not None:
            pictures.images[block.src] = prepared
    if org.logo_url and is_local(org.logo_url):
        path = local_path(org.logo_url, templates_dir)
        pictures.watched.append(path)
        pictures.logo = _prepare_or_problem(
            org.logo_url, path, templates_dir / ORGANISATION_FILE, None, pictures,
            where_hint="logo_url is an https URL or a file relative to the templates folder",
        )  # fmt: skip
    return pictures


def _prepare_or_problem(
    src: str,
    path: Path,
    named_in: Path,
    line: int | None,
    pictures: Pictures,
    where_hint: str = "",
) -> PreparedImage | None:
    try:
        return prepare(path)
    except ImageFileError as error:
        hint = where_hint if where_hint and error.not_found else error.hint
        pictures.problems.append(ImageProblem(src, named_in, line, str(error), hint))
        return None


class ImageFileError(Exception):
    def __init__(self, message: str, hint: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.hint = hint
        self.not_found = not_found


# Preparing a 4,000 px photo takes a good part of a second; the preview re-renders on every
# save. Keyed by file, modification time and size, so an edited picture is prepared afresh.
_CACHE: dict[tuple[str, int, int], PreparedImage] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 64


def prepare(path: Path) -> PreparedImage:
    """The email-ready version of the picture at ``path``; raises ImageFileError."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        near = _near_miss(path)
        raise ImageFileError(
            f"image {path} not found",
            f"did you mean {near}? The name must match exactly, capitals included, and use / "
            "(web servers and Linux tell Photo.JPG from photo.jpg)"
            if near
            else "image paths are relative to the issue file, e.g. images/social.jpg",
            not_found=True,
        ) from None
    except OSError as error:
        raise ImageFileError(
            f"image {path} cannot be read: {error.strerror}", "check the file"
        ) from None
    if not path.is_file():
        raise ImageFileError(f"image {path} is not a file", "name a picture file")
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageFileError(
            f"image {path} cannot be read: {error.strerror}", "check the file's permissions"
        ) from None
    prepared = prepare_bytes(data, source=path)
    with _CACHE_LOCK:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = prepared
    return prepared


def _near_miss(path: Path) -> Path | None:
    """The file the chair most likely meant: the same path but for capitals, or with \\
    written for / (a Windows habit). On macOS and Windows the wrong case opens the file,
    so an issue written there breaks only on Linux and on the web server."""
    wanted = Path(str(path).replace("\\", "/"))
    found = Path(wanted.anchor) if wanted.is_absolute() else Path()
    for part in wanted.parts[1 if wanted.is_absolute() else 0 :]:
        if part in (".", ".."):
            found = found / part
            continue
        try:
            match = next(c for c in found.iterdir() if c.name.casefold() == part.casefold())
        except (OSError, StopIteration):
            return None
        found = match
    return found if found != path and found.is_file() else None


@functools.cache
def _read_heic() -> None:
    """Teach Pillow to open HEIC/HEIF, the format iPhones (and many Android phones) save
    photos in. pillow-heif wraps libheif, the reference decoder; Pillow has none of its own.
    It applies the file's rotation while decoding and resets the EXIF flag, so the photo
    comes out upright once, not twice. Registered on first use: importing it costs start-up."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # an install without it: HEIC photos get the "not an image" error
        return
    register_heif_opener()


def prepare_bytes(data: bytes, *, source: Path) -> PreparedImage:
    """Orient, strip, convert and scale one picture (see the module's docstring)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    _read_heic()
    Image.MAX_IMAGE_PIXELS = None  # checked below, by format (see JPEG_MAX_PIXELS)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            source_format = opened.format or ""
            # Only these formats animate; an MPO "JPEG" holds a depth map or a second view.
            frames = getattr(opened, "n_frames", 1) if source_format in ANIMATED else 1
            if source_format == "MPO":  # a JPEG with extra pictures: decode it as one
                source_format = "JPEG"
            _check_pixels(opened.size, source_format, source)
            if source_format == "JPEG":
                # Let the JPEG decoder scale by 1/2, 1/4 or 1/8 while decoding, never below
                # MAX_WIDTH in either direction (so whatever the orientation): ~4× faster.
                opened.draft(opened.mode, (MAX_WIDTH, MAX_WIDTH))
            opened.load()
            picture = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as error:
        detail = "" if isinstance(error, UnidentifiedImageError) else f" ({error})"
        raise ImageFileError(
            f"{source} is not an image Pillow can read{detail}",
            "use a JPEG, PNG, GIF, WebP or HEIC file",
        ) from None
    picture = _eight_bit(picture)
    icc = picture.info.get("icc_profile")
    transparent = _uses_alpha(picture)
    picture = picture.convert("RGBA" if transparent else "RGB")
    if picture.width > MAX_WIDTH:
        height = max(1, round(picture.height * MAX_WIDTH / picture.width))
        # reduce() first: a 4,000 px photo is box-shrunk cheaply before the fine filter.
        picture = picture.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if icc:  # after scaling: converting 1.9 instead of 12 megapixels
        picture = _to_srgb(picture, icc)
    flat = source_format in {"PNG", "GIF", "BMP"} and picture.getcolors(FLAT_COLOURS) is not None
    # A fresh image carries no info at all: nothing of the original's EXIF, XMP, comments or
    # profile can be written out with it.
    clean = Image.new(picture.mode, picture.size)
    clean.paste(picture)
    out = io.BytesIO()
    if transparent or flat:
        clean.save(out, "PNG", optimize=True)
        mime = "image/png"
    else:
        clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        mime = "image/jpeg"
    prepared = out.getvalue()
    return PreparedImage(
        source=source,
        data=prepared,
        mime=mime,
        width=clean.width,
        height=clean.height,
        digest=hashlib.sha256(prepared).hexdigest()[:20],
        frames=frames,
    )


def visible_colours(image: PreparedImage, side: int = 160) -> list[tuple[int, int, int]] | None:
    """The colours of the picture's visible pixels (alpha at least half), sampled on a
    thumbnail of at most ``side`` px; None for a picture without transparency (it brings
    its own background, so whatever it is shown on does not hide it)."""
    from PIL import Image

    if image.mime != "image/png":
        return None
    with Image.open(io.BytesIO(image.data)) as opened:
        if opened.mode != "RGBA":
            return None
        picture = opened.convert("RGBA")
    picture.thumbnail((side, side))
    pixels = picture.tobytes()  # RGBA bytes (getdata() is deprecated in Pillow 13)
    return [
        (pixels[i], pixels[i + 1], pixels[i + 2])
        for i in range(0, len(pixels), 4)
        if pixels[i + 3] >= 128
    ]


def _check_pixels(size: tuple[int, int], source_format: str, source: Path) -> None:
    limit = JPEG_MAX_PIXELS if source_format == "JPEG" else OTHER_MAX_PIXELS
    width, height = size
    if width * height > limit:
        raise ImageFileError(
            f"{source} is {width} × {height} px ({width * height / 1e6:.0f} megapixels), "
            f"too large to prepare (at most {limit / 1e6:.0f} megapixels as "
            f"{'JPEG' if source_format == 'JPEG' else source_format or 'this format'})",
            f"save a smaller copy (the email uses at most {MAX_WIDTH} px across)"
            + ("" if source_format == "JPEG" else ", or save it as JPEG"),
        )


def _eight_bit(picture):
    """16-bit greyscale (scans, microscopy, X-ray exports) as 8-bit grey: converted as it is,
    every value above 255 was clipped to white and the picture came out blank."""
    if not picture.mode.startswith("I"):
        return picture
    info = picture.info
    wide = picture.convert("I")
    if wide.getextrema()[1] > 255:  # 16-bit values: scale 0…65535 onto 0…255
        wide = wide.point(lambda value: value * (255 / 65535))
    narrow = wide.convert("L")
    narrow.info.update(info)  # keep the colour profile for the conversion to sRGB
    return narrow


def _uses_alpha(picture) -> bool:
    """True when some pixel is not fully opaque (an alpha channel alone is not enough)."""
    if picture.mode not in ("RGBA", "LA", "PA") and "transparency" not in picture.info:
        return False
    alpha = picture.convert("RGBA").getchannel("A")
    return alpha.getextrema()[0] < 255


def _to_srgb(picture, icc: bytes):
    """Convert from the embedded colour profile to sRGB, which every client assumes once the
    profile is gone; an unreadable profile is dropped as it is."""
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(picture, source, target, outputMode=picture.mode)
    except Exception:  # noqa: BLE001 - a broken or exotic profile must not stop the issue
        return picture
    return converted if converted is not None else picture


def content_id(image: PreparedImage, domain: str) -> str:
    """The Content-ID (without angle brackets) of an embedded image; ``cid:`` + this in HTML."""
    return f"{image.name}@{domain or 'newsletter.invalid'}"


def write_assets(folder: Path, prepared: list[PreparedImage]) -> None:
    """Each prepared picture as ``folder/assets/<hash>.<ext>`` (named by content: an
    existing file of that name already holds the same bytes)."""
    if not prepared:
        return
    assets = folder / ASSETS
    assets.mkdir(exist_ok=True)
    for image in prepared:
        target = assets / image.name
        if not target.exists():
            # Atomic: a file cut short by a killed run would keep its name, and so be kept.
            atomic_write(target, image.data)
