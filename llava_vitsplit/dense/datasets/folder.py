"""Your own data: images with masks (segmentation) or with depth PNGs (depth), split into folders.

Layout::

    ROOT/
      images/{train,val}/NAME.jpg|png|...
      masks/{train,val}/NAME.png        one-channel class ids (segmentation), or
      depth/{train,val}/NAME.png        16-bit depth x depth_scale, 0 = no ground truth (depth)
      classes.txt                       segmentation: one class name per line (else --num-classes)

Nested sub-folders are allowed; a label has the image's relative path with a ``.png`` suffix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .base import DenseRecord, paired_records
from .labels import DepthLabels, SegmentationLabels

SPLITS = {"train": "train", "val": "val", "test": "test"}


def detect_label_folder(root: Path) -> str:
    """The one label folder beside ``images/``: it says which task the dataset serves."""
    present = [name for name in LABEL_FOLDERS if (root / name).is_dir()]
    if len(present) != 1:
        choices = " or ".join(f"{name}/ ({labels.task})" for name, labels in LABEL_FOLDERS.items())
        raise FileNotFoundError(
            f"folder dataset {root}: expected exactly one of {choices} beside images/, found {present or 'neither'}"
        )
    return present[0]


def read_class_names(root: Path, num_classes: int | None) -> tuple[str, ...]:
    names_file = root / "classes.txt"
    if names_file.is_file():
        names = tuple(line.strip() for line in names_file.read_text().splitlines() if line.strip())
        if num_classes is not None and num_classes != len(names):
            raise ValueError(f"{names_file} lists {len(names)} classes but num_classes = {num_classes}")
        return names
    if num_classes is None:
        raise ValueError(
            f"folder dataset {root}: give num_classes or write {names_file} (one class per line)"
        )
    return tuple(f"class {i}" for i in range(num_classes))


def records(
    root: Path,
    split: str,
    *,
    num_classes: int | None = None,
    reduce_zero_label: bool = False,
    depth_scale: float = 1000.0,
    min_depth: float = 1e-3,
    max_depth: float = 10.0,
) -> tuple[list[DenseRecord], SegmentationLabels | DepthLabels]:
    label_folder = detect_label_folder(root)
    label_root = root / label_folder / SPLITS[split]
    image_root = root / "images" / SPLITS[split]
    found = paired_records(
        image_root,
        label_root,
        lambda image: label_root / image.relative_to(image_root).with_suffix(".png"),
        f"folder dataset {root} ({split})",
    )
    options = dict(
        num_classes=num_classes,
        reduce_zero_label=reduce_zero_label,
        depth_scale=depth_scale,
        min_depth=min_depth,
        max_depth=max_depth,
    )
    return found, LABEL_FOLDERS[label_folder].build(root, **options)


def _mask_labels(root: Path, *, num_classes, reduce_zero_label, **_) -> SegmentationLabels:
    return SegmentationLabels(read_class_names(root, num_classes), reduce_zero_label=reduce_zero_label)


def _depth_labels(root: Path, *, depth_scale, min_depth, max_depth, **_) -> DepthLabels:
    return DepthLabels(depth_scale=depth_scale, min_depth=min_depth, max_depth=max_depth)


@dataclass(frozen=True)
class LabelFolder:
    task: str
    build: Callable[..., SegmentationLabels | DepthLabels]
    """``(root, **options) -> labels``: the label conventions of the folder's files."""


LABEL_FOLDERS = {
    "masks": LabelFolder("segmentation", _mask_labels),
    "depth": LabelFolder("depth", _depth_labels),
}
