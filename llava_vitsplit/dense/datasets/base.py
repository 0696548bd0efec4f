"""One dataset class for every layout: a list of (image, label file) records plus label conventions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..transforms import EvalTransform
from .labels import DepthLabels, SegmentationLabels

Labels = SegmentationLabels | DepthLabels
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class DenseRecord:
    image: Path
    label: Path


def read_image(path: Path) -> np.ndarray:
    """An RGB ``uint8`` array ``(H, W, 3)``."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from error


def read_label(path: Path) -> np.ndarray:
    """The stored values of a one-channel PNG (palette indices, 8- or 16-bit integers)."""
    try:
        with Image.open(path) as label:
            if label.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise ValueError(
                    f"expected a one-channel label image (mode L, P or I;16), got mode {label.mode}"
                )
            return np.asarray(label)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read label {path}: {error}") from error


def paired_records(
    image_dir: Path, label_dir: Path, label_for: Callable[[Path], Path], what: str
) -> list[DenseRecord]:
    """Every image under ``image_dir`` (recursively, sorted) with its label ``label_for(image)``.

    A missing folder or a missing label is an error that names the expected path.
    """
    for folder, role in ((image_dir, "image"), (label_dir, "label")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{what}: {role} folder {folder} does not exist")
    images = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return records_with_labels(images, label_for, what)


def records_with_labels(
    images: Iterable[Path], label_for: Callable[[Path], Path], what: str
) -> list[DenseRecord]:
    records = []
    for image in images:
        label = label_for(image)
        if not label.is_file():
            raise FileNotFoundError(f"{what}: image {image} has no label file (expected {label})")
        records.append(DenseRecord(image, label))
    return records


class DenseDataset(torch.utils.data.Dataset):
    """``{"pixel_values": (3, H, W) float, "labels": (H, W) int64 class ids or float32 metres, "index"}``.

    The transform gets a generator seeded by (seed, epoch, index): call ``set_epoch`` each epoch.
    """

    def __init__(
        self,
        records: list[DenseRecord],
        labels: Labels,
        transform: Callable | None = None,
        *,
        name: str = "dataset",
        seed: int = 0,
    ) -> None:
        if not records:
            raise ValueError(f"{name}: no samples found")
        self.records = records
        self.labels = labels
        self.transform = transform or EvalTransform()
        self.name = name
        self.seed = seed
        self.epoch = 0

    @property
    def task(self) -> str:
        return self.labels.task

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored image and its decoded target, at the stored size."""
        record = self.records[index]
        image = read_image(record.image)
        target = self.labels.decode(read_label(record.label), str(record.label))
        if target.shape != image.shape[:2]:
            raise ValueError(
                f"{record.label}: label size {target.shape} differs from its image {record.image} {image.shape[:2]}"
            )
        return image, target

    def __getitem__(self, index: int) -> dict:
        image, target = self.load(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        pixel_values, labels = self.transform(image, target, rng)
        return {"pixel_values": pixel_values, "labels": labels, "index": index}
