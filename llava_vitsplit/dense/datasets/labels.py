"""Label conventions: how a stored label file becomes training targets.

Segmentation targets are class ids ``0..C-1`` plus ``ignore_index`` (MMSeg's convention, 255);
depth targets are metres, with 0 marking a pixel that has no ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# NYU-v2 evaluation crop of Eigen et al. on the 480x640 frames: rows 45..470, columns 41..600.
EIGEN_CROP = (45, 471, 41, 601)
NYU_FRAME = (480, 640)


@dataclass(frozen=True)
class SegmentationLabels:
    """Class names and how raw label values map to them.

    ``reduce_zero_label``: raw 0 means "unlabelled" (ADE20K, Pascal Context), raw k means class k - 1.
    ``id_map``: raw id -> class id pairs (Cityscapes ``labelIds`` -> train ids); unmapped ids are ignored.
    """

    class_names: tuple[str, ...]
    reduce_zero_label: bool = False
    id_map: tuple[tuple[int, int], ...] | None = None
    ignore_index: int = 255

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ValueError("SegmentationLabels.class_names is empty: a segmentation dataset needs classes")
        if not 0 <= self.ignore_index <= 255 or self.ignore_index < self.num_classes:
            raise ValueError(
                f"SegmentationLabels.ignore_index = {self.ignore_index} must be in {self.num_classes}..255 "
                f"(above the {self.num_classes} class ids, and fit in a uint8 mask)"
            )
        if self.reduce_zero_label and self.id_map is not None:
            raise ValueError("SegmentationLabels: use reduce_zero_label or id_map, not both")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def task(self) -> str:
        return "segmentation"

    def decode(self, raw: np.ndarray, source: str) -> np.ndarray:
        """Raw mask values -> ``uint8`` class ids (``ignore_index`` where unlabelled)."""
        if raw.ndim != 2:
            raise ValueError(f"{source}: a segmentation mask must have one channel, got shape {raw.shape}")
        raw = raw.astype(np.int64)
        if self.id_map is not None:
            lookup = np.full(max(int(raw.max()), max(k for k, _ in self.id_map)) + 1, self.ignore_index)
            for raw_id, class_id in self.id_map:
                lookup[raw_id] = class_id
            labels = lookup[raw]
        elif self.reduce_zero_label:
            labels = np.where(raw == 0, self.ignore_index, raw - 1)
            labels[raw == self.ignore_index] = self.ignore_index  # an explicit ignore stays ignore
        else:
            labels = raw
        bad = (labels >= self.num_classes) & (labels != self.ignore_index)
        if bad.any():
            values = sorted(set(raw[bad].tolist()))[:10]
            raise ValueError(
                f"{source}: raw label value(s) {values} do not map to a class id 0..{self.num_classes - 1} "
                f"or the ignore index {self.ignore_index} (reduce_zero_label={self.reduce_zero_label})"
            )
        return labels.astype(np.uint8)


@dataclass(frozen=True)
class DepthLabels:
    """Depth PNGs store ``depth * depth_scale`` as 16-bit integers (NYU: millimetres, scale 1000).

    Pixels outside ``(min_depth, max_depth]`` carry no ground truth: they are set to 0 and masked
    from the loss and the metrics (the 10 m cap of NYU-v2).
    """

    depth_scale: float = 1000.0
    min_depth: float = 1e-3
    max_depth: float = 10.0
    eval_crop: str | None = None
    """``"eigen"`` for NYU-v2: score only the Eigen crop of each 480x640 frame."""
    train_crop: tuple[int, int, int, int] | None = None
    """``(top, bottom, left, right)`` kept before random cropping (NYU drops the white frame border)."""

    def __post_init__(self) -> None:
        if self.depth_scale <= 0:
            raise ValueError(f"DepthLabels.depth_scale = {self.depth_scale} must be > 0")
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(
                f"DepthLabels: need 0 <= min_depth < max_depth, got {self.min_depth} and {self.max_depth}"
            )
        if self.eval_crop not in (None, "eigen"):
            raise ValueError(f"DepthLabels.eval_crop = {self.eval_crop!r}: expected None or 'eigen'")

    @property
    def task(self) -> str:
        return "depth"

    def decode(self, raw: np.ndarray, source: str) -> np.ndarray:
        """Stored integers -> ``float32`` metres, 0 where invalid or beyond the depth range."""
        if raw.ndim != 2:
            raise ValueError(f"{source}: a depth map must have one channel, got shape {raw.shape}")
        if not np.issubdtype(raw.dtype, np.integer):
            raise ValueError(
                f"{source}: depth PNGs hold integers (depth x {self.depth_scale}), got {raw.dtype}"
            )
        depth = raw.astype(np.float32) / self.depth_scale
        return np.where(self.valid(depth), depth, 0).astype(np.float32)

    def valid(self, depth: np.ndarray) -> np.ndarray:
        return (depth > self.min_depth) & (depth <= self.max_depth)

    def eval_mask(self, shape: tuple[int, int]) -> np.ndarray | None:
        """Pixels that count in the metrics beside the validity mask (``None``: all of them)."""
        if self.eval_crop is None:
            return None
        if tuple(shape) != NYU_FRAME:
            raise ValueError(f"the Eigen crop is defined on {NYU_FRAME} NYU frames, got a {shape} depth map")
        top, bottom, left, right = EIGEN_CROP
        mask = np.zeros(shape, dtype=bool)
        mask[top:bottom, left:right] = True
        return mask
