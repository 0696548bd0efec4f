"""Training augmentation and normalisation, as MMSeg's standard pipelines and the NYU depth recipe.

Every random choice draws from the ``numpy.random.Generator`` passed in, so one sample's
augmentation depends only on (seed, epoch, index): a resumed run sees the same crops.

Segmentation (MMSeg): random rescale within ``ratio_range`` of ``scale`` -> random crop (retried
while one class covers more than ``cat_max_ratio``) -> horizontal flip -> photometric distortion ->
normalise -> pad to the crop size (image 0 = the mean colour, mask ``ignore_index``).
Depth (NYU): keep the valid frame -> small random rotation -> flip -> random crop -> gamma /
brightness / colour jitter -> normalise -> pad (depth 0 = no ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

# ImageNet statistics in 0..255 (DINOv2, CLIP-style ViTs and MMSeg configs all use them).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def normalize(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` RGB in 0..255 -> ``(3, H, W)`` float32, ImageNet-normalised."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)
    std = np.asarray(IMAGENET_STD, dtype=np.float32)
    array = (np.asarray(image, dtype=np.float32) - mean) / std
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def label_tensor(label: np.ndarray) -> torch.Tensor:
    """Class ids -> int64, depth -> float32."""
    if label.dtype == np.float32:
        return torch.from_numpy(np.ascontiguousarray(label))
    return torch.from_numpy(np.ascontiguousarray(label.astype(np.int64)))


def rescale_size(height: int, width: int, scale: tuple[float, float]) -> tuple[int, int]:
    """MMSeg's keep-ratio rescale: the largest size whose long edge fits ``max(scale)`` and whose
    short edge fits ``min(scale)``."""
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return max(1, int(height * factor + 0.5)), max(1, int(width * factor + 0.5))


def resize_pair(image: np.ndarray, label: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear for the image, nearest for the label (class ids and depths must not be blended)."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image, label
    image = np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))
    label = np.asarray(Image.fromarray(label).resize((width, height), Image.NEAREST))
    return image, label


def random_rescale(image, label, scale, ratio_range, rng: np.random.Generator):
    ratio = rng.uniform(*ratio_range)
    size = rescale_size(*image.shape[:2], (scale[0] * ratio, scale[1] * ratio))
    return resize_pair(image, label, size)


def _crop_box(shape, crop_size, rng: np.random.Generator) -> tuple[int, int, int, int]:
    height, width = shape
    top = int(rng.integers(0, max(height - crop_size[0], 0) + 1))
    left = int(rng.integers(0, max(width - crop_size[1], 0) + 1))
    return top, min(top + crop_size[0], height), left, min(left + crop_size[1], width)


def random_crop(image, label, crop_size, rng: np.random.Generator, cat_max_ratio=1.0, ignore_index=255):
    """A random window of at most ``crop_size``; with ``cat_max_ratio < 1`` up to ten draws are tried
    until no single class covers more than that share of the labelled pixels."""
    box = _crop_box(image.shape[:2], crop_size, rng)
    if cat_max_ratio < 1.0:
        for _ in range(10):
            window = label[box[0] : box[1], box[2] : box[3]]
            _, counts = np.unique(window[window != ignore_index], return_counts=True)
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            box = _crop_box(image.shape[:2], crop_size, rng)
    top, bottom, left, right = box
    return image[top:bottom, left:right], label[top:bottom, left:right]


def random_flip(image, label, rng: np.random.Generator, prob=0.5):
    if rng.random() < prob:
        return image[:, ::-1], label[:, ::-1]
    return image, label


def photometric_distortion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MMSeg's PhotoMetricDistortion: each step with probability 1/2 - brightness +-32, contrast
    x[0.5, 1.5] (before or after the colour steps), saturation x[0.5, 1.5], hue +-18 degrees."""
    image = image.astype(np.float32)

    def contrast(img):
        return img * rng.uniform(0.5, 1.5) if rng.integers(2) else img

    if rng.integers(2):
        image = image + rng.uniform(-32, 32)
    contrast_first = bool(rng.integers(2))
    if contrast_first:
        image = contrast(image)
    saturate, shift_hue = rng.integers(2), rng.integers(2)
    if saturate or shift_hue:
        hsv = np.asarray(Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).convert("HSV")).astype(
            np.float32
        )
        if saturate:
            hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.5, 1.5), 0, 255)
        if shift_hue:
            hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18) * 256 / 360) % 256  # PIL hue is 0..255
        size = (hsv.shape[1], hsv.shape[0])
        image = np.asarray(Image.frombytes("HSV", size, hsv.astype(np.uint8).tobytes()).convert("RGB"))
        image = image.astype(np.float32)
    if not contrast_first:
        image = contrast(image)
    return np.clip(image, 0, 255).astype(np.uint8)


def random_rotate(image, depth, rng: np.random.Generator, max_degree=2.5, prob=0.5):
    """A small rotation about the centre; the uncovered corners get depth 0 (no ground truth)."""
    if rng.random() >= prob:
        return image, depth
    angle = rng.uniform(-max_degree, max_degree)
    image = np.asarray(Image.fromarray(image).rotate(angle, Image.BILINEAR))
    depth = np.asarray(Image.fromarray(depth.astype(np.float32)).rotate(angle, Image.NEAREST))
    return image, depth


def color_augment(image: np.ndarray, rng: np.random.Generator, prob=0.5) -> np.ndarray:
    """Gamma x[0.9, 1.1], brightness x[0.75, 1.25], per-channel colour x[0.9, 1.1] (the NYU recipe)."""
    if rng.random() >= prob:
        return image
    unit = image.astype(np.float32) / 255.0
    unit = unit ** rng.uniform(0.9, 1.1) * rng.uniform(0.75, 1.25)
    unit = unit * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    return (np.clip(unit, 0, 1) * 255).astype(np.uint8)


def pad_to(
    pixel_values: torch.Tensor, labels: torch.Tensor, size, label_value
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad bottom/right up to ``size``; normalised image 0 is the mean colour."""
    pad_h, pad_w = size[0] - pixel_values.shape[-2], size[1] - pixel_values.shape[-1]
    if pad_h <= 0 and pad_w <= 0:
        return pixel_values, labels
    pad = (0, max(pad_w, 0), 0, max(pad_h, 0))
    pixel_values = torch.nn.functional.pad(pixel_values, pad, value=0.0)
    labels = torch.nn.functional.pad(labels, pad, value=label_value)
    return pixel_values, labels


def _check_size(field: str, size) -> tuple[int, int]:
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{field} = {size} must be (height, width) with positive entries")
    return size


@dataclass(frozen=True)
class SegmentationTrainTransform:
    crop_size: tuple[int, int]
    scale: tuple[int, int] | None = None
    """MMSeg ``img_scale`` (long, short) before the ratio jitter; ``None`` keeps the stored size."""
    ratio_range: tuple[float, float] = (0.5, 2.0)
    cat_max_ratio: float = 0.75
    flip_prob: float = 0.5
    photometric: bool = True
    ignore_index: int = 255

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_size", _check_size("crop_size", self.crop_size))
        if not 0 < self.ratio_range[0] <= self.ratio_range[1]:
            raise ValueError(f"ratio_range = {self.ratio_range} must satisfy 0 < low <= high")

    def __call__(self, image, label, rng: np.random.Generator):
        if self.scale is not None:
            image, label = random_rescale(image, label, self.scale, self.ratio_range, rng)
        image, label = random_crop(image, label, self.crop_size, rng, self.cat_max_ratio, self.ignore_index)
        image, label = random_flip(image, label, rng, self.flip_prob)
        if self.photometric:
            image = photometric_distortion(image, rng)
        return pad_to(normalize(image), label_tensor(label), self.crop_size, self.ignore_index)


@dataclass(frozen=True)
class DepthTrainTransform:
    crop_size: tuple[int, int]
    train_crop: tuple[int, int, int, int] | None = None
    rotate_degree: float = 2.5
    rotate_prob: float = 0.5
    flip_prob: float = 0.5
    color_prob: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_size", _check_size("crop_size", self.crop_size))

    def __call__(self, image, depth, rng: np.random.Generator):
        if self.train_crop is not None:
            top, bottom, left, right = self.train_crop
            image, depth = image[top:bottom, left:right], depth[top:bottom, left:right]
        image, depth = random_rotate(image, depth, rng, self.rotate_degree, self.rotate_prob)
        image, depth = random_flip(image, depth, rng, self.flip_prob)
        image, depth = random_crop(image, depth, self.crop_size, rng)
        image = color_augment(image, rng, self.color_prob)
        return pad_to(normalize(image), label_tensor(depth), self.crop_size, 0.0)


@dataclass(frozen=True)
class EvalTransform:
    """Normalise only: test-time resizing happens in inference, so metrics use the stored size."""

    def __call__(self, image, label, rng: np.random.Generator):
        return normalize(image), label_tensor(label)
