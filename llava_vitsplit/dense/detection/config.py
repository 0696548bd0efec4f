"""The detection part's own settings, kept in ``DenseTaskConfig.options`` (``"task": "detection"``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .neck import NeckNorm

if TYPE_CHECKING:
    from ..task import DenseTaskConfig

NECK_NORMS = ("batch", "group")


@dataclass(frozen=True)
class DetectionOptions:
    category_ids: tuple[int, ...]
    """The dataset's category id of each class (label i + 1 is ``category_ids[i]``; 0 is background)."""
    patch_size: int = 16
    min_size: tuple[int, ...] = (800,)
    """Shorter image side after Mask R-CNN's resize (training draws one of them per batch)."""
    max_size: int = 1333
    neck_norm: NeckNorm = "batch"
    score_threshold: float = 0.05
    detections_per_image: int = 100
    proposals: tuple[int, int] = (2000, 1000)
    """RPN proposals kept after NMS per image (training, test): torchvision's defaults."""
    rois_per_image: int = 512
    """RoIs sampled per image for the box head in training (torchvision's and MMDet's 512)."""

    def __post_init__(self) -> None:
        for name in ("category_ids", "min_size", "proposals"):
            value = getattr(self, name)
            object.__setattr__(self, name, tuple(value) if isinstance(value, list | tuple) else (value,))
        if len(set(self.category_ids)) != len(self.category_ids):
            raise ValueError(f"detection options: category ids {self.category_ids} are not distinct")
        if self.patch_size < 4 or self.patch_size & (self.patch_size - 1):
            raise ValueError(
                f"detection options: patch_size = {self.patch_size}: Mask R-CNN's poolers need power-of-two "
                "feature strides (patch/4 .. 2*patch), so the patch size must be a power of two >= 4 (16 as the authors)"
            )
        if self.neck_norm not in NECK_NORMS:
            raise ValueError(f"detection options: neck_norm = {self.neck_norm!r}: choose one of {NECK_NORMS}")
        if not self.min_size or min(self.min_size) < 1 or self.max_size < max(self.min_size):
            raise ValueError(
                f"detection options: need 1 <= min_size {self.min_size} <= max_size {self.max_size}"
            )
        if (
            len(self.proposals) != 2
            or min(self.proposals) < 1
            or min(self.rois_per_image, self.detections_per_image) < 1
        ):
            raise ValueError(
                f"detection options: proposals {self.proposals} (train, test), rois_per_image {self.rois_per_image} "
                f"and detections_per_image {self.detections_per_image} must be positive"
            )

    @classmethod
    def of(cls, config: DenseTaskConfig) -> DetectionOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config.options) - known)
        if unknown:
            raise ValueError(f"detection options: unknown {unknown}; known: {sorted(known)}")
        if "category_ids" not in config.options:
            raise ValueError("detection options: category_ids is missing")
        options = cls(**config.options)
        if len(options.category_ids) != len(config.class_names or ()):
            raise ValueError(
                f"detection options: {len(options.category_ids)} category ids for {len(config.class_names or ())} classes"
            )
        return options

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
