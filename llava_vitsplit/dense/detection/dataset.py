"""COCO instances as torchvision detection samples: ``(image, target)`` with boxes, labels, masks.

Augmentation is torchvision's ``transforms.v2`` on ``tv_tensors``, so boxes and masks follow every
flip, rescale and crop of the image. The 1x recipe flips here and leaves the resize to Mask R-CNN's
own transform (shorter side ``min_size``, longer at most ``max_size``); large-scale jitter (rescale
0.1-2x, crop/pad to a square) is the option of the newer recipes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from .coco import CocoInstances, find_split

LSJ_SCALE_RANGE = (0.1, 2.0)


def train_transforms(flip_prob: float = 0.5, jitter_size: int | None = None) -> v2.Transform:
    steps: list[v2.Transform] = [v2.RandomHorizontalFlip(flip_prob)]
    if jitter_size:
        steps += [
            v2.ScaleJitter((jitter_size, jitter_size), scale_range=LSJ_SCALE_RANGE),
            v2.RandomCrop((jitter_size, jitter_size), pad_if_needed=True),
        ]
    steps.append(v2.SanitizeBoundingBoxes(min_size=1.0))  # drops boxes a crop made empty, with their masks
    return v2.Compose(steps)


class CocoDetectionDataset(Dataset):
    """One split of a COCO-format folder; ``category_ids`` fixes the label order (label i+1 =
    ``category_ids[i]``, 0 is background), so train and val agree."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        transforms: v2.Transform | None = None,
        category_ids: tuple[int, ...] | None = None,
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
        self.transforms = transforms

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
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image.as_subclass(torch.Tensor), target


def collate(batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
    """Detection batches are lists: images keep their own sizes until Mask R-CNN's transform pads them."""
    images, targets = zip(*batch)
    return list(images), list(targets)
