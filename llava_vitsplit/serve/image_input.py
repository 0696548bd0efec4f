"""Images from users: a file, a URL or a PIL image, checked, upright, RGB and not huge.

Every failure is a `ChatInputError` that names the file and says what is wrong, so the demo can
answer it in the chat and go on serving.

Memory: a small file can hold a huge picture (a 450 KB PNG of 12000x12000 pixels decodes to
432 MB). An upload is refused above `MAX_DECODED_PIXELS` (counted after JPEG's reduced-scale
decoding, far below Pillow's own 179-megapixel limit), one image is decoded at a time
(`_DECODE_SLOT`, whatever thread asks), and it is shrunk before the copies that turn it upright
and RGB, so several uploads at once cost at most one full-size decode.
"""

from __future__ import annotations

import io
import os
import threading
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import ChatInputError

# Twice the largest vision-tower input here (518 px), and small enough that each open
# conversation holds at most 3 MB of pixels, whatever was uploaded.
MAX_IMAGE_SIDE = 1024
# 40 megapixels (about 120 MB decoded as RGB): above any phone or camera photo's usual output.
MAX_DECODED_PIXELS = 40_000_000
_DECODE_SLOT = threading.Lock()
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 30
_IMAGE_FORMATS = "upload a photo or picture file such as PNG, JPEG, WebP, GIF, BMP or TIFF."
# EXIF orientations that turn the picture by 90 degrees.
_ORIENTATIONS_SWAPPING_SIDES = (5, 6, 7, 8)


@dataclass(frozen=True)
class UserImage:
    image: Image.Image  # RGB, at most MAX_IMAGE_SIDE on its longer side
    name: str  # file name or URL, for messages
    original_size: tuple[int, int]  # (width, height) before downscaling

    @property
    def downscaled(self) -> bool:
        return self.image.size != self.original_size

    def describe_downscale(self) -> str:
        (width, height), (new_width, new_height) = self.original_size, self.image.size
        return f"The image is {width}x{height} pixels; it was downscaled to {new_width}x{new_height}."


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_image(
    source: str | os.PathLike | Image.Image, *, max_side: int = MAX_IMAGE_SIDE, max_pixels: int | None = None
) -> UserImage:
    """Open `source` (a path, an http(s) URL or a PIL image) as an upright RGB image.

    `max_pixels` refuses larger images from their header, before any pixel is decoded."""
    if isinstance(source, Image.Image):
        return _prepare(source, "image", max_side, owned=False)
    name = str(source)
    if is_url(name):
        return read_image_bytes(_download(name), name, max_side=max_side, max_pixels=max_pixels)
    path = Path(name)
    if not path.is_file():
        raise ChatInputError(f"Image file not found: {name}")
    return _decode(path, path.name, max_side, max_pixels)


def read_image_bytes(
    data: bytes, name: str, *, max_side: int = MAX_IMAGE_SIDE, max_pixels: int | None = None
) -> UserImage:
    """An encoded image held in memory (an upload, a `data:` URL), checked as `read_image` checks files."""
    return _decode(io.BytesIO(data), name, max_side, max_pixels)


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ChatInputError(f"Could not download the image {url}: {error}") from error
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise ChatInputError(f"The image at {url} is larger than {MAX_DOWNLOAD_BYTES // 2**20} MiB.")
    return data


def _decode(file, name: str, max_side: int, max_pixels: int | None = None) -> UserImage:
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 megapixels and raises above twice that; the warning is moot
            # because we downscale right away, the error becomes a message below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                stored_size = image.size
                # JPEG can decode at 1/2, 1/4 or 1/8 scale: huge photos never load at full size.
                image.draft("RGB", (max_side, max_side))
                _check_pixels(name, stored_size, image.size, max_pixels)
                with _DECODE_SLOT:
                    image.load()
                    return _prepare(image, name, max_side, stored_size)
    except ChatInputError:
        raise
    except Image.DecompressionBombError as error:
        raise ChatInputError(f"{name} is too large to open safely ({error}).") from error
    except UnidentifiedImageError as error:  # its message holds the server's path: not for the user
        raise ChatInputError(f"{name} is not an image: {_IMAGE_FORMATS}") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise ChatInputError(f"{name} could not be decoded ({error}): {_IMAGE_FORMATS}") from error


def _check_pixels(name: str, stored_size: tuple[int, int], decoded_size: tuple[int, int], max_pixels: int | None) -> None:
    """Refuse from the header: above the caller's `max_pixels` (stored size), or above what one
    decode may cost (`MAX_DECODED_PIXELS`, after JPEG's reduced-scale decoding)."""
    width, height = stored_size
    if max_pixels is not None and width * height > max_pixels:
        raise ChatInputError(
            f"{name} is {width}x{height} = {width * height:,} pixels; at most {max_pixels:,} are accepted. "
            "Send a smaller image (the model sees it at a few hundred pixels a side anyway)."
        )
    decoded_width, decoded_height = decoded_size
    if decoded_width * decoded_height > MAX_DECODED_PIXELS:
        raise ChatInputError(
            f"{name} is {width}x{height} pixels ({decoded_width * decoded_height / 1e6:.0f} megapixels), more than "
            f"this demo decodes ({MAX_DECODED_PIXELS / 1e6:.0f} megapixels): upload a smaller copy, e.g. a JPEG."
        )


def _prepare(
    image: Image.Image, name: str, max_side: int, stored_size: tuple[int, int] | None = None, owned: bool = True
) -> UserImage:
    """Shrink first (in place when `image` is ours), then turn upright and RGB: no full-size copies."""
    width, height = stored_size or image.size
    if image.getexif().get(ExifTags.Base.Orientation, 1) in _ORIENTATIONS_SWAPPING_SIDES:
        width, height = height, width
    if image.mode in ("P", "1"):  # palette pixels resize by nearest neighbour: make them RGB(A) first
        image, owned = image.convert("RGBA" if "transparency" in image.info else "RGB"), True
    if max(image.size) > max_side:
        image = image if owned else image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # (a square box: before turning is the same)
    rgb = _to_rgb(ImageOps.exif_transpose(image))
    return UserImage(image=rgb, name=name, original_size=(width, height))


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB; transparent pixels become white (what a viewer shows), not black."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
