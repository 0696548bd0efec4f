"""LLaVA's image geometry in front of the tower's own image processor.

``image_aspect_ratio`` (LLaVA's name):

* ``pad``: expand the image to a square with the image processor's mean colour, centred, then let
  the processor resize it (LLaVA-1.5's setting: nothing is cropped away);
* ``square``: hand the image to the processor as it is (LLaVA's default: resize the shortest edge,
  centre-crop), which is also what transformers' ``LlavaProcessor`` does;
* ``resize``: stretch the image to the processor's square output size (no crop, no padding).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

ASPECT_RATIOS = ("pad", "square", "resize")


def check_aspect_ratio(mode: str) -> str:
    if mode not in ASPECT_RATIOS:
        raise ValueError(f"image_aspect_ratio={mode!r} is not supported; choose one of {ASPECT_RATIOS}")
    return mode


def open_image(path: str | os.PathLike) -> Image.Image:
    """An RGB image from a file; a file that cannot be read or decoded is named in the error."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"image file not found: {path}") from error
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"cannot decode image {path}: {error}") from error


def as_rgb_image(image: Any) -> Image.Image:
    """Accept a PIL image or a path; anything else is an error that says what it got."""
    if isinstance(image, (str, Path)):
        return open_image(image)
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    raise TypeError(f"expected a PIL image or an image path, got {type(image).__name__}")


def mean_color(image_processor) -> tuple[int, int, int]:
    """The processor's normalisation mean as an 8-bit RGB colour (LLaVA's padding colour)."""
    return tuple(int(round(channel * 255)) for channel in image_processor.image_mean)


def output_size(image_processor) -> tuple[int, int]:
    """``(height, width)`` of the processor's output, which must not depend on the input."""
    crop = getattr(image_processor, "crop_size", None)
    if getattr(image_processor, "do_center_crop", False) and crop is not None and crop.get("height"):
        return crop["height"], crop["width"]
    size = image_processor.size
    if size.get("height"):
        return size["height"], size["width"]
    raise ValueError(
        f"{type(image_processor).__name__} has no fixed output size (size={dict(size)!r}, no centre crop); "
        "LLaVA needs every image at one size"
    )


def with_image_size(image_processor, image_size: int):
    """A copy of ``image_processor`` that outputs ``image_size x image_size`` images."""
    settings = image_processor.to_dict()
    settings.pop("image_processor_type", None)
    if getattr(image_processor, "do_center_crop", False):
        settings["size"] = {"shortest_edge": image_size}
        settings["crop_size"] = {"height": image_size, "width": image_size}
    else:
        settings["size"] = {"height": image_size, "width": image_size}
    return type(image_processor)(**settings)


def expand_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    square = Image.new(image.mode, (side, side), fill)
    square.paste(image, ((side - width) // 2, (side - height) // 2))
    return square


def apply_aspect_ratio(image: Image.Image, mode: str, image_processor) -> Image.Image:
    """The geometry step of ``mode`` (see the module docstring); the processor does the rest."""
    check_aspect_ratio(mode)
    if mode == "pad":
        return expand_to_square(image, mean_color(image_processor))
    if mode == "resize":
        height, width = output_size(image_processor)
        return image.resize((width, height), Image.Resampling.BICUBIC)
    return image
