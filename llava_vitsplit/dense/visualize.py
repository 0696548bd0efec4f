"""Coloured masks and depth maps, laid out beside the input image."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

# Anchors of a dark-blue -> teal -> yellow ramp (near = bright), interpolated linearly.
_DEPTH_RAMP = np.array(
    [[253, 231, 37], [94, 201, 98], [33, 145, 140], [59, 82, 139], [68, 1, 84]], dtype=np.float32
)


def class_palette(num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` distinct colours: the bit-interleaving scheme of the Pascal VOC devkit."""
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for index in range(num_classes):
        value, colour = index + 1, [0, 0, 0]  # +1: class 0 is not black, black stays "ignored"
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[index] = colour
    return palette


def colorize_mask(class_ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Class ids ``(H, W)`` -> RGB; ids outside ``0..num_classes-1`` (ignored pixels) are black."""
    palette = np.concatenate([class_palette(num_classes), np.zeros((1, 3), dtype=np.uint8)])
    ids = np.where((class_ids >= 0) & (class_ids < num_classes), class_ids, num_classes)
    return palette[ids]


def colorize_depth(
    depth: np.ndarray, min_depth: float | None = None, max_depth: float | None = None
) -> np.ndarray:
    """Depth ``(H, W)`` in metres -> RGB, near bright and far dark; the range defaults to the map's own."""
    low = float(np.min(depth)) if min_depth is None else min_depth
    high = float(np.max(depth)) if max_depth is None else max_depth
    unit = np.clip((depth - low) / max(high - low, 1e-6), 0, 1) * (len(_DEPTH_RAMP) - 1)
    lower = np.floor(unit).astype(int).clip(0, len(_DEPTH_RAMP) - 2)
    blend = (unit - lower)[..., None]
    return (_DEPTH_RAMP[lower] * (1 - blend) + _DEPTH_RAMP[lower + 1] * blend).astype(np.uint8)


def side_by_side(panels: list[tuple[str, np.ndarray]], gap: int = 8) -> Image.Image:
    """Equal-height RGB panels in a row, each titled above."""
    height = max(panel.shape[0] for _, panel in panels)
    title = 18
    width = sum(panel.shape[1] for _, panel in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, height + title), "white")
    draw = ImageDraw.Draw(canvas)
    left = 0
    for name, panel in panels:
        canvas.paste(Image.fromarray(panel), (left, title))
        draw.text((left + 4, 3), name, fill="black")
        left += panel.shape[1] + gap
    return canvas
