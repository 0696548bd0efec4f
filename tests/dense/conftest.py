"""Tiny random DINOv2 backbones and tiny dataset folders written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from transformers import Dinov2Config, Dinov2Model

from llava_vitsplit.dense.trainer import DenseTrainConfig
from llava_vitsplit.split import config_for_backbone

# Width 64: the dense heads' GroupNorm needs D and D/2 divisible by 32.
TINY_DINOV2 = dict(
    hidden_size=64,
    num_hidden_layers=4,
    num_attention_heads=2,
    intermediate_size=128,
    patch_size=8,
    image_size=32,
)
TINY_SPLIT = dict(num_task_layers=1, num_prior_layers=2, prior_start_layer=1)


def tiny_config(preset, data_root, output_dir, **overrides) -> DenseTrainConfig:
    """A few CPU steps on a tiny backbone: the recipe of ``preset`` at crop 32, batch 4."""
    fields = dict(
        dataset="folder",
        crop_size=(32, 32),
        iters=4,
        batch_size=4,
        learning_rate=1e-3,
        num_workers=0,
        log_interval=1,
        eval_interval=100,
        save_interval=2,
        keep_checkpoints=5,
        split_overrides=TINY_SPLIT,
    )
    return DenseTrainConfig.from_preset(preset, data_root, output_dir, **(fields | overrides))


def tiny_dinov2() -> Dinov2Model:
    return Dinov2Model(Dinov2Config(**TINY_DINOV2, layerscale_value=0.5)).eval()


def tiny_split_config(backbone):
    return config_for_backbone(backbone, **TINY_SPLIT)


@pytest.fixture
def backbone() -> Dinov2Model:
    return tiny_dinov2()


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def random_image(rng, height=40, width=48) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_segmentation_folder(root: Path, counts=(("train", 8), ("val", 2)), size=(40, 48), seed=0) -> Path:
    """Two classes that the image shows (bright vs dark left half), so a model can learn them."""
    rng = np.random.default_rng(seed)
    for split, count in counts:
        for index in range(count):
            image = random_image(rng, *size) // 2
            mask = np.zeros(size, dtype=np.uint8)
            cut = int(rng.integers(size[1] // 4, 3 * size[1] // 4))
            mask[:, :cut] = 1
            image[:, :cut] += 120
            write_png(root / "images" / split / f"{index:03d}.png", image)
            write_png(root / "masks" / split / f"{index:03d}.png", mask)
    (root / "classes.txt").write_text("dark\nbright\n")
    return root


def write_depth_folder(root: Path, counts=(("train", 8), ("val", 2)), size=(40, 48), seed=0) -> Path:
    """Depth grows downwards (1..4 m); a few pixels have no ground truth (0)."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(1.0, 4.0, size[0], dtype=np.float32)[:, None].repeat(size[1], axis=1)
    for split, count in counts:
        for index in range(count):
            depth = (rows * 1000).astype(np.uint16)
            depth[rng.random(size) < 0.05] = 0
            write_png(root / "images" / split / f"{index:03d}.png", random_image(rng, *size))
            write_png(root / "depth" / split / f"{index:03d}.png", depth)
    return root
