"""ADE20K (SceneParsing challenge 2016): 150 classes, raw 0 = "other" (ignored), reduce-zero-label.

Layout (as downloaded)::

    ADEChallengeData2016/
      images/{training,validation}/ADE_*.jpg
      annotations/{training,validation}/ADE_*.png
"""

from __future__ import annotations

from pathlib import Path

from .base import DenseRecord, paired_records
from .labels import SegmentationLabels

FOLDER = "ADEChallengeData2016"
SPLITS = {"train": "training", "val": "validation"}
CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper",
    "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table",
    "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table",
    "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island",
    "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
    "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy",
    "washer", "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
    "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce",
    "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
LABELS = SegmentationLabels(CLASS_NAMES, reduce_zero_label=True)


def find_root(root: Path) -> Path:
    """Accept the ``ADEChallengeData2016`` folder itself or the folder that holds it."""
    return root / FOLDER if (root / FOLDER).is_dir() else root


def records(root: Path, split: str) -> tuple[list[DenseRecord], SegmentationLabels]:
    base = find_root(root)
    folder = SPLITS[split]
    found = paired_records(
        base / "images" / folder,
        base / "annotations" / folder,
        lambda image: (
            base / "annotations" / folder / image.relative_to(base / "images" / folder).with_suffix(".png")
        ),
        f"ADE20K {split} ({FOLDER} under {root})",
    )
    return found, LABELS
