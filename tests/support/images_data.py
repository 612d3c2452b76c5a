"""Real picture files for the image tests, made with Pillow: a phone photo (sideways with an
EXIF orientation flag, GPS position and camera details), a transparent PNG logo, a large
photo with real detail, and a file that only pretends to be a picture."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw

RED = (220, 20, 20)
BLUE = (20, 40, 220)
ORIENTATION, MAKE, MODEL, GPS_IFD = 0x0112, 0x010F, 0x0110, 0x8825


def _sideways_shot(width: int, height: int) -> tuple[Image.Image, Image.Exif]:
    """Stored landscape with orientation 6 ("rotate 90° clockwise to show"): upright it is
    portrait, and the red band stored along the left edge is along the top; the EXIF holds
    the camera and a GPS position, as a phone writes them."""
    picture = Image.new("RGB", (width, height), BLUE)
    ImageDraw.Draw(picture).rectangle((0, 0, width // 5, height), fill=RED)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "PhoneMaker"
    exif[MODEL] = "Pocket Camera 12"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 28.0, 51.0), 3: "W", 4: (1.0, 53.0, 24.0)}
    return picture, exif


def phone_photo(path: Path, width: int = 4000, height: int = 3000) -> Path:
    """A sideways JPEG with an sRGB profile (see ``_sideways_shot``)."""
    picture, exif = _sideways_shot(width, height)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    picture.save(path, "JPEG", exif=exif, quality=90, icc_profile=profile)
    return path


def iphone_photo(path: Path, width: int = 4032, height: int = 3024) -> Path:
    """The same shot as a HEIC file, as an iPhone saves it (written by pillow-heif, which
    wraps libheif, the encoder too)."""
    import pillow_heif

    picture, exif = _sideways_shot(width, height)
    pillow_heif.from_pillow(picture).save(path, quality=80, exif=exif.tobytes())
    return path


def transparent_logo(path: Path, width: int = 360, height: int = 120) -> Path:
    picture = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(picture).ellipse((10, 10, width - 10, height - 10), fill=(11, 79, 108, 255))
    picture.save(path, "PNG")
    return path


def detailed_photo(path: Path, width: int = 4000, height: int = 2600, seed: int = 1) -> Path:
    """A large photo with real detail (noise compresses as badly as a photo of a crowd)."""
    rng = random.Random(seed)
    small = Image.frombytes(
        "RGB", (width // 8, height // 8), rng.randbytes(width * height * 3 // 64)
    )
    small.resize((width, height), Image.Resampling.BICUBIC).save(path, "JPEG", quality=92)
    return path


def not_a_picture(path: Path) -> Path:
    path.write_text("this is not a picture\n", encoding="utf-8")
    return path
