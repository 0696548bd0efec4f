"""Monocular depth: metres per pixel, the scale-invariant log loss, the NYU metrics."""

from __future__ import annotations

import numpy as np
import torch

from ..heads import DepthHead
from ..losses import depth_loss
from ..metrics import DepthMetrics, format_depth_table
from ..transforms import DepthTrainTransform
from ..visualize import colorize_depth
from .base import PixelTask
from .registry import register_task

MILLIMETRES_PER_METRE = 1000


@register_task
class DepthTask(PixelTask):
    name = "depth"
    activation = "identity"

    def part_fields(self, labels) -> dict:
        return {"min_depth": labels.min_depth, "max_depth": labels.max_depth}

    def validate_config(self, config) -> None:
        if not 0 <= config.min_depth < config.max_depth:
            raise ValueError(
                f"DenseTaskConfig: need 0 <= min_depth < max_depth, got {config.min_depth}, {config.max_depth}"
            )

    def build_decoder(self, config, in_channels: int):
        return DepthHead(in_channels, config.min_depth)

    def preset_head(self, preset, in_channels: int):
        return DepthHead(in_channels)

    def train_transform(self, config, labels):
        return DepthTrainTransform(config.crop_size, train_crop=labels.train_crop)

    def loss(self, output, labels, config) -> torch.Tensor:
        return depth_loss(output, labels, config.min_depth, config.max_depth)

    def new_metrics(self, labels) -> DepthMetrics:
        return DepthMetrics(max(labels.min_depth, 1e-6), labels.max_depth)

    def update_metrics(self, metrics, output, target, labels) -> None:
        mask = labels.eval_mask(tuple(target.shape))
        metrics.update(output[0], target, None if mask is None else torch.from_numpy(mask))

    def format_metrics(self, metrics: dict) -> str:
        return format_depth_table(metrics)

    def postprocess(self, output: torch.Tensor, config) -> np.ndarray:
        """``(1, H, W)`` -> depth in metres ``(H, W)``."""
        return output[0].float().cpu().numpy()

    def draw(self, image, prediction, config):
        return f"{prediction.min():.2f}-{prediction.max():.2f} m", colorize_depth(prediction)

    def raw_output(self, prediction: np.ndarray) -> np.ndarray:
        """16-bit millimetres."""
        return np.clip(np.round(prediction * MILLIMETRES_PER_METRE), 0, 65535).astype(np.uint16)
