"""NYU Depth v2 with the usual train/test split files (BTS / Monocular-Depth-Estimation-Toolbox layout).

Layout::

    nyu/
      nyu_train.txt     lines "/SCENE/rgb_00000.jpg /SCENE/sync_depth_00000.png 518.8579"
      nyu_test.txt      lines "SCENE/rgb_00045.jpg SCENE/sync_depth_00045.png 518.8579"
      ...               the files those lines name (paths relative to the nyu/ folder)

Depth PNGs are 16-bit millimetres; depth is capped at 10 m; evaluation uses the Eigen crop, and
training keeps rows 45..471 and columns 43..607 (the frame without its white border).
"""

from __future__ import annotations

from pathlib import Path

from .base import DenseRecord
from .labels import DepthLabels

SPLITS = {"train": "train", "val": "test", "test": "test"}
LABELS = DepthLabels(
    depth_scale=1000.0, min_depth=1e-3, max_depth=10.0, eval_crop="eigen", train_crop=(45, 472, 43, 608)
)


def records(root: Path, split: str) -> tuple[list[DenseRecord], DepthLabels]:
    split_file = root / f"nyu_{SPLITS[split]}.txt"
    if not split_file.is_file():
        raise FileNotFoundError(f"NYU Depth v2 {split}: split file {split_file} does not exist")
    found = []
    for number, line in enumerate(split_file.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ValueError(f"{split_file}:{number}: expected 'IMAGE DEPTH [FOCAL]', got {line!r}")
        image, depth = (root / field.lstrip("/") for field in fields[:2])
        for path, role in ((image, "image"), (depth, "depth map")):
            if not path.is_file():
                raise FileNotFoundError(f"{split_file}:{number}: {role} {path} does not exist")
        found.append(DenseRecord(image, depth))
    return found, LABELS
