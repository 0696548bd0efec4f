"""What a trained detection part is: split hyper-parameters, classes, patch size and test setting.

Saved as ``dense_task.json`` (``"task": "detection"``) beside the part's weights.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from llava_vitsplit.split import ViTSplitConfig

from ..task import CONFIG_FILE
from .neck import NeckNorm

TASK = "detection"
NECK_NORMS = ("batch", "group")


@dataclass(frozen=True)
class DetectionConfig:
    split: dict
    """``ViTSplitConfig`` fields (the backbone's L and D included)."""
    class_names: tuple[str, ...]
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
    preset: str | None = None
    dataset: str | None = None
    backbone: str | None = None
    task: str = TASK

    def __post_init__(self) -> None:
        for name in ("class_names", "category_ids", "min_size", "proposals"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.task != TASK:
            raise ValueError(f"DetectionConfig.task = {self.task!r}: a detection part has task {TASK!r}")
        if not self.class_names:
            raise ValueError("DetectionConfig: class_names is empty: there is nothing to detect")
        if len(self.category_ids) != len(self.class_names) or len(set(self.category_ids)) != len(
            self.category_ids
        ):
            raise ValueError(
                f"DetectionConfig: need one distinct category id per class, got {len(self.category_ids)} ids "
                f"for {len(self.class_names)} classes"
            )
        if self.patch_size < 4 or self.patch_size & (self.patch_size - 1):
            raise ValueError(
                f"DetectionConfig.patch_size = {self.patch_size}: Mask R-CNN's poolers need power-of-two "
                "feature strides (patch/4 .. 2*patch), so the patch size must be a power of two >= 4 (16 as the authors)"
            )
        if (
            len(self.proposals) != 2
            or min(self.proposals) < 1
            or self.rois_per_image < 1
            or self.detections_per_image < 1
        ):
            raise ValueError(
                f"DetectionConfig: proposals {self.proposals} (train, test), rois_per_image {self.rois_per_image} "
                f"and detections_per_image {self.detections_per_image} must be positive"
            )
        if self.neck_norm not in NECK_NORMS:
            raise ValueError(f"DetectionConfig.neck_norm = {self.neck_norm!r}: choose one of {NECK_NORMS}")
        if not self.min_size or min(self.min_size) < 1 or self.max_size < max(self.min_size):
            raise ValueError(
                f"DetectionConfig: need 1 <= min_size {self.min_size} <= max_size {self.max_size}"
            )
        self.split_config()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split_config(self) -> ViTSplitConfig:
        fields = dict(self.split)
        if fields.get("prior_layer_ids") is not None:
            fields["prior_layer_ids"] = tuple(fields["prior_layer_ids"])
        return ViTSplitConfig(**fields)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> DetectionConfig:
        path = Path(folder) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} is not a trained detection part (no {CONFIG_FILE})")
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON ({error})") from error
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error
