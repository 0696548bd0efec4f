"""Cityscapes fine annotations: the 19 evaluation classes ("train ids"), everything else ignored.

Layout (as downloaded)::

    leftImg8bit/{train,val}/CITY/NAME_leftImg8bit.png
    gtFine/{train,val}/CITY/NAME_gtFine_labelTrainIds.png   (from cityscapesscripts' createTrainIdLabelImgs)
    gtFine/{train,val}/CITY/NAME_gtFine_labelIds.png        (used, and mapped, when the above are absent)
"""

from __future__ import annotations

from pathlib import Path

from .base import DenseRecord, paired_records
from .labels import SegmentationLabels

SPLITS = {"train": "train", "val": "val"}
CLASS_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)  # fmt: skip
# Cityscapes label id -> train id for the 19 evaluated classes (the benchmark's official table).
LABEL_ID_TO_TRAIN_ID = (
    (7, 0), (8, 1), (11, 2), (12, 3), (13, 4), (17, 5), (19, 6), (20, 7), (21, 8), (22, 9),
    (23, 10), (24, 11), (25, 12), (26, 13), (27, 14), (28, 15), (31, 16), (32, 17), (33, 18),
)  # fmt: skip
TRAIN_ID_LABELS = SegmentationLabels(CLASS_NAMES)
LABEL_ID_LABELS = SegmentationLabels(CLASS_NAMES, id_map=LABEL_ID_TO_TRAIN_ID)
IMAGE_SUFFIX = "_leftImg8bit.png"


def _label_path(label_dir: Path, image_dir: Path, image: Path, kind: str) -> Path:
    relative = image.relative_to(image_dir)
    name = relative.name.removesuffix(IMAGE_SUFFIX) + f"_gtFine_{kind}.png"
    return label_dir / relative.parent / name


def records(root: Path, split: str) -> tuple[list[DenseRecord], SegmentationLabels]:
    image_dir = root / "leftImg8bit" / SPLITS[split]
    label_dir = root / "gtFine" / SPLITS[split]
    what = f"Cityscapes {split} (under {root})"
    # Prefer train-id masks; fall back to raw label ids (mapped here) only when none exist at all.
    has_train_ids = label_dir.is_dir() and any(label_dir.rglob("*_gtFine_labelTrainIds.png"))
    kind, labels = ("labelTrainIds", TRAIN_ID_LABELS) if has_train_ids else ("labelIds", LABEL_ID_LABELS)
    found = paired_records(
        image_dir, label_dir, lambda image: _label_path(label_dir, image_dir, image, kind), what
    )
    stray = [r.image for r in found if not r.image.name.endswith(IMAGE_SUFFIX)]
    if stray:
        raise ValueError(f"{what}: {stray[0]} is not named *{IMAGE_SUFFIX} as Cityscapes images are")
    return found, labels
