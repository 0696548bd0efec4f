"""Semantic segmentation: class scores per pixel, cross-entropy, MMSeg's mIoU table."""

from __future__ import annotations

import numpy as np
import torch

from ..heads import SegmentationHead
from ..losses import segmentation_loss
from ..metrics import SegmentationMetrics, format_segmentation_table
from ..transforms import SegmentationTrainTransform
from ..visualize import colorize_mask
from .base import PixelTask
from .registry import register_task


@register_task
class SegmentationTask(PixelTask):
    name = "segmentation"
    aliases = ("seg", "linear-seg")
    activation = "softmax"

    def part_fields(self, labels) -> dict:
        return {"class_names": labels.class_names, "ignore_index": labels.ignore_index}

    def validate_config(self, config) -> None:
        if not config.class_names:
            raise ValueError("DenseTaskConfig: a segmentation part needs class_names")

    def build_decoder(self, config, in_channels: int):
        return SegmentationHead(in_channels, config.num_classes)

    def preset_head(self, preset, in_channels: int):
        return SegmentationHead(in_channels, preset.num_classes)

    def check_dataset(self, dataset, config=None) -> None:
        super().check_dataset(dataset, config)
        if config is not None and dataset.labels.num_classes != config.num_classes:
            raise ValueError(
                f"the part predicts {config.num_classes} classes, {dataset.name} has {dataset.labels.num_classes}"
            )

    def train_transform(self, config, labels):
        return SegmentationTrainTransform(
            config.crop_size,
            scale=config.train_scale,
            ignore_index=labels.ignore_index,
            photometric=config.photometric,
        )

    def loss(self, output, labels, config) -> torch.Tensor:
        return segmentation_loss(output, labels, config.ignore_index)

    def new_metrics(self, labels) -> SegmentationMetrics:
        return SegmentationMetrics(labels.num_classes, labels.ignore_index, labels.class_names)

    def update_metrics(self, metrics, output, target, labels) -> None:
        metrics.update(output.argmax(0), target)

    def format_metrics(self, metrics: dict) -> str:
        return format_segmentation_table(metrics)

    def postprocess(self, output: torch.Tensor, config) -> np.ndarray:
        """``(C, H, W)`` class probabilities -> ``uint8`` class ids."""
        return output.float().argmax(0).cpu().numpy().astype(np.uint8)

    def draw(self, image, prediction, config):
        return f"{config.num_classes} classes", colorize_mask(prediction, config.num_classes)

    def raw_output(self, prediction: np.ndarray) -> np.ndarray:
        return prediction
