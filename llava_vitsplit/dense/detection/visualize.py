"""Detections drawn on the image: translucent instance masks, boxes, class names and scores."""

from __future__ import annotations

import numpy as np
import torch
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

from ..visualize import class_palette
from .evaluation import MASK_THRESHOLD


def draw_detections(
    image: np.ndarray, output: dict, class_names: tuple[str, ...], score_threshold: float = 0.5
) -> np.ndarray:
    """``image (H, W, 3) uint8`` + one Mask R-CNN output -> ``(H, W, 3) uint8``, one colour per class."""
    keep = output["scores"] >= score_threshold
    labels = output["labels"][keep].cpu()
    palette = [tuple(int(v) for v in colour) for colour in class_palette(len(class_names))]
    colours = [palette[int(label) - 1] for label in labels]
    canvas = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)  # a writable copy
    if len(labels):
        masks = output["masks"][keep][:, 0].cpu() > MASK_THRESHOLD
        canvas = draw_segmentation_masks(canvas, masks, alpha=0.45, colors=colours)
        captions = [
            f"{class_names[int(label) - 1]} {score:.2f}"
            for label, score in zip(labels, output["scores"][keep])
        ]
        canvas = draw_bounding_boxes(canvas, output["boxes"][keep].cpu(), captions, colors=colours, width=2)
    return canvas.permute(1, 2, 0).numpy()
