"""A tiny patch-14 DINOv2 and tiny COCO-format folders written by the tests themselves."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import Dinov2Config, Dinov2Model

TINY_PATCH14 = dict(
    hidden_size=64,
    num_hidden_layers=4,
    num_attention_heads=2,
    intermediate_size=128,
    patch_size=14,
    image_size=56,
)
TINY_SPLIT = dict(num_task_layers=2, num_prior_layers=2, prior_start_layer=0)
TINY_OPTIONS = dict(neck_norm="group", proposals=[64, 32], rois_per_image=32, detections_per_image=20)
TINY_SIZES = dict(min_size=(64,), max_size=96, **TINY_OPTIONS)
CATEGORIES = [{"id": 3, "name": "square"}, {"id": 7, "name": "bar"}]
SIZE = 64


def tiny_dinov2_patch14() -> Dinov2Model:
    return Dinov2Model(Dinov2Config(**TINY_PATCH14, layerscale_value=0.5)).eval()


@pytest.fixture
def backbone_dir(tmp_path) -> Path:
    folder = tmp_path / "backbone"
    tiny_dinov2_patch14().save_pretrained(folder)
    return folder


def _rectangle(ann_id: int, image_id: int, category: int, x: int, y: int, w: int, h: int) -> dict:
    polygon = [x, y, x + w, y, x + w, y + h, x, y + h]
    return {"id": ann_id, "image_id": image_id, "category_id": category, "bbox": [x, y, w, h],
            "segmentation": [polygon], "area": w * h, "iscrowd": 0}  # fmt: skip


def coco_split(count: int, seed: int, first_id: int = 1) -> tuple[dict, dict[str, np.ndarray]]:
    """``count`` images, each a grey background with a bright square (category 3) and a dark bar
    (category 7) at random places: shapes and colours a detector can learn in a few steps."""
    rng = np.random.default_rng(seed)
    images, annotations, pixels = [], [], {}
    for index in range(count):
        image_id = first_id + index
        array = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
        x, y = (int(v) for v in rng.integers(2, 30, 2))
        array[y : y + 24, x : x + 24] = (250, 220, 40)
        annotations.append(_rectangle(10 * image_id, image_id, 3, x, y, 24, 24))
        bx = int(rng.integers(2, 50))
        array[2:62, bx : bx + 10] = (20, 30, 120)
        annotations.append(_rectangle(10 * image_id + 1, image_id, 7, bx, 2, 10, 60))
        name = f"img_{image_id:04d}.png"
        images.append({"id": image_id, "file_name": name, "height": SIZE, "width": SIZE})
        pixels[name] = array
    return {"images": images, "annotations": annotations, "categories": copy.deepcopy(CATEGORIES)}, pixels


def write_coco_split(root: Path, split: str, data: dict, pixels: dict[str, np.ndarray]) -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / split).mkdir(parents=True, exist_ok=True)
    for name, array in pixels.items():
        Image.fromarray(array).save(root / split / name)
    path = root / "annotations" / f"instances_{split}.json"
    path.write_text(json.dumps(data))
    return path


def write_coco_folder(root: Path, train: int = 6, val: int = 2) -> Path:
    write_coco_split(root, "train", *coco_split(train, seed=0))
    write_coco_split(root, "val", *coco_split(val, seed=1, first_id=100))
    return root


@pytest.fixture
def coco_root(tmp_path) -> Path:
    return write_coco_folder(tmp_path / "coco")
