"""Whole-image and sliding-window inference, multi-scale and flip, for one or several task outputs.

``forward(pixel_values)`` returns ``{task: (B, C, h, w)}`` at its input's size; every window, scale
and flip is one call, so several tasks still share one trunk pass per call. Outputs come back at
the input image's size: segmentation as class probabilities averaged over the augmentations
(MMSeg's aug-test), depth as the averaged depth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from .transforms import rescale_size

Forward = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]
MODES = ("whole", "slide")


def _pair(field_name: str, value) -> tuple[int, int] | None:
    if value is None:
        return None
    value = (value, value) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(value) != 2 or min(value) < 1:
        raise ValueError(f"InferenceConfig.{field_name} = {value} must be a positive int or (height, width)")
    return value


@dataclass(frozen=True)
class InferenceConfig:
    mode: str = "whole"
    crop_size: tuple[int, int] | None = None
    """Sliding window size (``slide`` mode)."""
    stride: tuple[int, int] | None = None
    """Step between windows (``slide`` mode); MMSeg uses two thirds of the window."""
    test_scale: tuple[int, int] | None = None
    """Keep-ratio rescale (long, short edge limits) before inference; ``None`` keeps the stored size."""
    scales: tuple[float, ...] = field(default=(1.0,))
    """Ratios of the test scale for multi-scale testing."""
    flip: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"InferenceConfig.mode = {self.mode!r}: choose one of {MODES}")
        object.__setattr__(self, "crop_size", _pair("crop_size", self.crop_size))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        object.__setattr__(self, "test_scale", _pair("test_scale", self.test_scale))
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"InferenceConfig.scales = {self.scales} must be positive ratios")
        if self.mode == "slide":
            if self.crop_size is None or self.stride is None:
                raise ValueError("InferenceConfig: slide mode needs crop_size and stride")
            if any(s > c for s, c in zip(self.stride, self.crop_size)):
                raise ValueError(
                    f"InferenceConfig.stride = {self.stride} exceeds crop_size = {self.crop_size}: windows would skip pixels"
                )

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "crop_size": list(self.crop_size) if self.crop_size else None,
            "stride": list(self.stride) if self.stride else None,
            "test_scale": list(self.test_scale) if self.test_scale else None,
            "scales": list(self.scales),
            "flip": self.flip,
        }


def slide_windows(size: tuple[int, int], crop: tuple[int, int], stride: tuple[int, int]):
    """``(top, bottom, left, right)`` of MMSeg's windows: a regular grid, the last row/column flush
    with the border, a single smaller window when the image is smaller than the crop."""
    (height, width), (crop_h, crop_w), (stride_h, stride_w) = size, crop, stride
    rows = max(height - crop_h + stride_h - 1, 0) // stride_h + 1
    cols = max(width - crop_w + stride_w - 1, 0) // stride_w + 1
    for row in range(rows):
        for col in range(cols):
            bottom, right = min(row * stride_h + crop_h, height), min(col * stride_w + crop_w, width)
            yield max(bottom - crop_h, 0), bottom, max(right - crop_w, 0), right


def _slide(forward: Forward, pixel_values: torch.Tensor, crop, stride) -> dict[str, torch.Tensor]:
    height, width = pixel_values.shape[-2:]
    sums: dict[str, torch.Tensor] = {}
    counts = pixel_values.new_zeros(1, 1, height, width, dtype=torch.float32)
    for top, bottom, left, right in slide_windows((height, width), crop, stride):
        for name, out in forward(pixel_values[..., top:bottom, left:right]).items():
            if name not in sums:  # float32 sums: windows overlap, bf16 would lose the average
                sums[name] = out.new_zeros(out.shape[0], out.shape[1], height, width, dtype=torch.float32)
            sums[name][..., top:bottom, left:right] += out.float()
        counts[..., top:bottom, left:right] += 1
    return {name: total / counts for name, total in sums.items()}


def _resize(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)


@torch.no_grad()
def predict(
    forward: Forward,
    pixel_values: torch.Tensor,
    config: InferenceConfig,
    activations: Mapping[str, str],
) -> dict[str, torch.Tensor]:
    """``activations[task]`` is ``"softmax"`` (segmentation logits -> probabilities) or ``"identity"``.

    Returns ``{task: (B, C, H, W)}`` at the size of ``pixel_values``.
    """
    for name, activation in activations.items():
        if activation not in ("softmax", "identity"):
            raise ValueError(
                f"activation for task {name!r} must be 'softmax' or 'identity', got {activation!r}"
            )
    size = tuple(pixel_values.shape[-2:])
    base = size if config.test_scale is None else rescale_size(*size, config.test_scale)
    totals: dict[str, torch.Tensor] = {}
    views = 0
    for scale in config.scales:
        scaled = _resize(
            pixel_values, (max(1, int(base[0] * scale + 0.5)), max(1, int(base[1] * scale + 0.5)))
        )
        for flip in (False, True) if config.flip else (False,):
            image = scaled.flip(-1) if flip else scaled
            if config.mode == "slide":
                outputs = _slide(forward, image, config.crop_size, config.stride)
            else:
                outputs = dict(forward(image))
            for name, activation in activations.items():
                if name not in outputs:
                    raise KeyError(f"forward returned no output for task {name!r} (got {sorted(outputs)})")
                out = outputs[name].flip(-1) if flip else outputs[name]
                out = _resize(out.float(), size)
                if activation == "softmax":
                    out = out.softmax(dim=1)
                totals[name] = totals[name] + out if name in totals else out
            views += 1
    return {name: total / views for name, total in totals.items()}
