"""Images from users: a file, a URL or a PIL image, checked, upright, RGB and not huge.

Every failure is a `ChatInputError` that names the file and says what is wrong, so the demo can
answer it in the chat and go on serving.
"""

from __future__ import annotations

import io
import os
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
        return _prepare(source, "image", max_side)
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
                _check_pixels(name, stored_size, max_pixels)
                # JPEG can decode at 1/2, 1/4 or 1/8 scale: huge photos never load at full size.
                image.draft("RGB", (max_side, max_side))
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


def _check_pixels(name: str, size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ChatInputError(
            f"{name} is {width}x{height} = {width * height:,} pixels; at most {max_pixels:,} are accepted. "
            "Send a smaller image (the model sees it at a few hundred pixels a side anyway)."
        )


def _prepare(image: Image.Image, name: str, max_side: int, stored_size: tuple[int, int] | None = None) -> UserImage:
    width, height = stored_size or image.size
    if image.getexif().get(ExifTags.Base.Orientation, 1) in _ORIENTATIONS_SWAPPING_SIDES:
        width, height = height, width
    rgb = _to_rgb(ImageOps.exif_transpose(image))
    if max(rgb.size) > max_side:
        rgb = rgb.copy()
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
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
