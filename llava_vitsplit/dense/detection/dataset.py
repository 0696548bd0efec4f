"""COCO instances as torchvision detection samples: ``(image, target)`` with boxes, labels, masks.

Augmentation is torchvision's ``transforms.v2`` on ``tv_tensors``, so boxes and masks follow every
flip, rescale and crop of the image. The 1x recipe flips here and leaves the resize to Mask R-CNN's
own transform (shorter side ``min_size``, longer at most ``max_size``); large-scale jitter (rescale
0.1-2x, crop/pad to a square) is the option of the newer recipes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from .coco import CocoInstances, CocoLoadReport, find_split

LSJ_SCALE_RANGE = (0.1, 2.0)
logger = logging.getLogger(__name__)


def train_transforms(flip_prob: float = 0.5, jitter_size: int | None = None) -> v2.Transform:
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(flip_prob)]
    if jitter_size:
        steps += [
            v2.ScaleJitter((jitter_size, jitter_size), scale_range=LSJ_SCALE_RANGE),
            v2.RandomCrop((jitter_size, jitter_size), pad_if_needed=True),
        ]
    steps.append(v2.SanitizeBoundingBoxes(min_size=1.0))  # drops boxes a crop made empty, with their masks
    return v2.Compose(steps)


@dataclass(frozen=True)
class DetectionLabels:
    """The label space of a COCO split (what a detection part's config takes from its data)."""

    class_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    report: CocoLoadReport
    task: str = "detection"


class CocoDetectionDataset(Dataset):
    """One split of a COCO-format folder; ``category_ids`` fixes the label order (label i+1 =
    ``category_ids[i]``, 0 is background), so train and val agree. Augmentation draws from a
    generator seeded by (seed, epoch, index), so a resumed run sees the same samples."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        transform: v2.Transform | None = None,
        *,
        category_ids: tuple[int, ...] | None = None,
        seed: int = 0,
    ) -> None:
        self.instances = CocoInstances(*find_split(root, split))
        self.category_ids = tuple(category_ids or self.instances.category_ids)
        missing = sorted(set(self.instances.category_ids) - set(self.category_ids))
        if missing:
            raise ValueError(
                f"{self.instances.annotation_file}: categories {missing} are not among the model's {self.category_ids}"
            )
        self.label_of = {category: index + 1 for index, category in enumerate(self.category_ids)}
        self.image_ids = self.instances.image_ids
        self.transform = transform
        self.name = f"coco:{split}"
        self.seed, self.epoch = seed, 0
        self.labels = DetectionLabels(
            self.instances.class_names, self.instances.category_ids, self.instances.report
        )

    @property
    def task(self) -> str:
        return self.labels.task

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.image_ids)

    def load_image(self, image_id: int) -> tv_tensors.Image:
        path = self.instances.image_dir / self.instances.images[image_id]["file_name"]
        with Image.open(path) as image:
            tensor = v2.functional.pil_to_tensor(image.convert("RGB"))
        expected = (self.instances.images[image_id]["height"], self.instances.images[image_id]["width"])
        if tuple(tensor.shape[-2:]) != expected:
            raise ValueError(
                f"{path}: image is {tuple(tensor.shape[-2:])} px but {self.instances.annotation_file} says {expected}"
            )
        return tv_tensors.Image(v2.functional.to_dtype(tensor, torch.float32, scale=True))

    def target(self, image_id: int, size: tuple[int, int]) -> dict:
        annotations = self.instances.annotations[image_id]
        boxes = torch.tensor([a["bbox_xyxy"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        return {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=size),
            "labels": torch.tensor([self.label_of[a["category_id"]] for a in annotations], dtype=torch.int64),
            "masks": tv_tensors.Mask(torch.from_numpy(self.instances.instance_masks(image_id))),
            "image_id": image_id,
        }

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image_id = self.image_ids[index]
        image = self.load_image(image_id)
        target = self.target(image_id, tuple(image.shape[-2:]))
        if self.transform is not None:
            with torch.random.fork_rng():
                torch.manual_seed(
                    int(np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(1)[0])
                )
                image, target = self.transform(image, target)
        target = {
            k: v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v for k, v in target.items()
        }
        return image.as_subclass(torch.Tensor), target


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Detection batches are lists: images keep their own sizes until Mask R-CNN's transform pads them."""
    images, targets = zip(*batch)
    return list(images), list(targets)


def load_coco(
    root: str | Path, split: str, *, transform=None, seed: int = 0, **options
) -> CocoDetectionDataset:
    """The ``coco`` dataset layout: ``annotations/instances_SPLIT.json`` + ``SPLIT/`` (or ``SPLIT2017``)."""
    if options:
        raise ValueError(
            f"coco fixes its own label conventions; options {sorted(options)} apply to folder datasets"
        )
    dataset = CocoDetectionDataset(root, split, transform, seed=seed)
    report = dataset.instances.report
    level = logging.WARNING if report.skipped else logging.INFO
    logger.log(level, "%s (%s): %s", dataset.name, dataset.instances.annotation_file, report.summary())
    return dataset
