"""Pascal Context, 59 classes: raw 0 = background (ignored), raw k = class k - 1 (reduce-zero-label).

Layout (VOC2010 plus the converted Context masks, as MMSeg prepares them)::

    VOCdevkit/VOC2010/
      JPEGImages/ID.jpg
      SegmentationClassContext/ID.png
      ImageSets/SegmentationContext/{train,val}.txt   (one ID per line)
"""

from __future__ import annotations

from pathlib import Path

from .base import DenseRecord, records_with_labels
from .labels import SegmentationLabels

SPLITS = {"train": "train", "val": "val"}
CLASS_NAMES = (
    "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle",
    "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow", "cup",
    "curtain", "dog", "door", "fence", "floor", "flower", "food", "grass", "ground", "horse",
    "keyboard", "light", "motorbike", "mountain", "mouse", "person", "plate", "platform",
    "pottedplant", "road", "rock", "sheep", "shelves", "sidewalk", "sign", "sky", "snow", "sofa",
    "table", "track", "train", "tree", "truck", "tvmonitor", "wall", "water", "window", "wood",
)  # fmt: skip
LABELS = SegmentationLabels(CLASS_NAMES, reduce_zero_label=True)


def find_root(root: Path) -> Path:
    """Accept ``VOC2010`` itself, ``VOCdevkit`` or the folder holding ``VOCdevkit``."""
    for candidate in (root, root / "VOC2010", root / "VOCdevkit" / "VOC2010"):
        if (candidate / "ImageSets" / "SegmentationContext").is_dir():
            return candidate
    raise FileNotFoundError(
        f"Pascal Context: no ImageSets/SegmentationContext under {root}, {root / 'VOC2010'} "
        f"or {root / 'VOCdevkit' / 'VOC2010'}"
    )


def records(root: Path, split: str) -> tuple[list[DenseRecord], SegmentationLabels]:
    base = find_root(root)
    split_file = base / "ImageSets" / "SegmentationContext" / f"{SPLITS[split]}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"Pascal Context {split}: split file {split_file} does not exist")
    ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]
    images = []
    for image_id in ids:
        image = base / "JPEGImages" / f"{image_id}.jpg"
        if not image.is_file():
            raise FileNotFoundError(f"{split_file}: listed image {image_id} has no file {image}")
        images.append(image)
    found = records_with_labels(
        images,
        lambda image: base / "SegmentationClassContext" / f"{image.stem}.png",
        f"Pascal Context {split} ({split_file})",
    )
    return found, LABELS
