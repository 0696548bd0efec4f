"""Detection and instance segmentation: Mask R-CNN (torchvision) on the fused ViT-Split map.

Unlike the per-pixel tasks, a batch is a list of images of their own sizes with box/mask targets,
the loss is Mask R-CNN's own (a dict, summed), and evaluation is COCO box and mask AP
(pycocotools). The pieces live in ``llava_vitsplit.dense.detection``; this module is the task's
entry in the registry.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import DenseTask
from .registry import register_task

METRIC_ROWS = ("bbox", "segm")
DRAW_SCORE_THRESHOLD = 0.5


@register_task
class DetectionTask(DenseTask):
    name = "detection"
    aliases = ("mask-rcnn",)
    train_fields = frozenset({"scale_jitter"})

    def part_fields(self, labels) -> dict:
        return {"class_names": labels.class_names, "options": {"category_ids": list(labels.category_ids)}}

    def part_options(self, config) -> dict:
        """Mask R-CNN's resize from ``--crop-size SHORT LONG`` (shorter side, longer-side limit) and any
        ``--task-option`` (``proposals``, ``rois_per_image``, ``neck_norm``...)."""
        return {"min_size": [config.crop_size[0]], "max_size": config.crop_size[1], **config.task_options}

    def validate_config(self, config) -> None:
        from ..detection.config import DetectionOptions

        if not config.class_names:
            raise ValueError(
                "DenseTaskConfig: a detection part needs class_names (the category list is empty)"
            )
        DetectionOptions.of(config)

    def build_part(self, config, adapter):
        from ..detection.model import DetectionPart

        return DetectionPart(config, adapter)

    def preset_head(self, preset, in_channels: int):
        """Neck, FPN and Mask R-CNN head of the preset (built over a meta backbone, for counting)."""
        from torch import nn

        from llava_vitsplit.split import build_backbone

        from ..detection.model import vitsplit_maskrcnn

        with torch.device("meta"):
            backbone = build_backbone(preset.backbone, patch_size=preset.patch_size, device="meta")
            part = vitsplit_maskrcnn(preset.name, preset.num_classes, backbone=backbone).part
        pieces = part.fpn_backbone
        return nn.ModuleDict({"neck": pieces.pyramid, "fpn": pieces.fpn,
                              "head": nn.ModuleList([part.detector.rpn, part.detector.roi_heads])})  # fmt: skip

    def check_dataset(self, dataset, config=None) -> None:
        super().check_dataset(dataset, config)
        if config is not None:
            expected = tuple(config.options["category_ids"])
            if tuple(dataset.labels.category_ids) != expected:
                raise ValueError(
                    f"the part detects category ids {list(expected)}, {dataset.name} has {list(dataset.labels.category_ids)}"
                )

    def train_transform(self, config, labels):
        from ..detection.dataset import train_transforms

        return train_transforms(jitter_size=config.scale_jitter)

    def eval_transform(self):
        return None

    def collate(self, samples):
        from ..detection.dataset import collate

        return collate(samples)

    def eval_forward(self, runner):
        return lambda images: {"task": runner.part(images)}

    def training_loss(self, runner, batch) -> torch.Tensor:
        images, targets = batch
        device = next(runner.part.parameters()).device
        targets = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
        losses = runner.part([image.to(device) for image in images], targets)
        return sum(losses.values())

    @torch.no_grad()
    def evaluate(self, forward, dataset, inference, *, output="task", device="cpu", sharding=None,
                 max_images=None, show_progress=True) -> dict:  # fmt: skip
        from ..detection.evaluation import coco_metrics, predict_records
        from .base import Sharding

        sharding = sharding or Sharding()
        records = predict_records(
            forward, dataset, output=output, device=device, shard=(sharding.index, sharding.count),
            max_images=max_images, show_progress=show_progress,
        )  # fmt: skip
        image_ids = dataset.image_ids[:max_images] if max_images is not None else None
        return coco_metrics(dataset, sharding.gather(records), image_ids)

    def format_metrics(self, metrics: dict) -> str:
        from ..detection.evaluation import STAT_NAMES

        lines = ["| | " + " | ".join(STAT_NAMES) + " |", "|---" * (len(STAT_NAMES) + 1) + "|"]
        for row in METRIC_ROWS:
            values = (metrics[f"{row}_{name}"] for name in STAT_NAMES)
            lines.append(f"| {row} | " + " | ".join("-" if v < 0 else f"{v:.1f}" for v in values) + " |")
        return "\n".join(lines)

    def postprocess(self, output, config) -> dict:
        """One image's detections, on the CPU, those scoring at least 0.5."""
        keep = output["scores"] >= DRAW_SCORE_THRESHOLD
        return {key: value[keep].float().cpu() for key, value in output.items()}

    def draw(self, image, prediction, config):
        from ..detection.visualize import draw_detections

        return f"{len(prediction['scores'])} objects", draw_detections(image, prediction, config.class_names)

    def raw_output(self, prediction) -> np.ndarray:
        """Instance ids (uint16, 0 = none; i = the i-th detection, by descending score)."""
        from ..detection.evaluation import MASK_THRESHOLD

        masks = prediction["masks"][:, 0] > MASK_THRESHOLD
        ids = np.zeros(masks.shape[-2:], dtype=np.uint16)
        for index in range(len(masks) - 1, -1, -1):  # the best-scoring instance is drawn last, on top
            ids[masks[index].numpy()] = index + 1
        return ids
