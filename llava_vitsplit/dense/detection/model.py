"""The detection part (ViT-Split heads, four-scale neck, FPN, torchvision's RPN and RoI box/mask
heads) and ``ViTSplitMaskRCNN`` (a frozen trunk + that part), with a torchvision-style builder."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN

from llava_vitsplit.split import (
    BackboneAdapter,
    FrozenTrunk,
    ViTSplitHeads,
    adapt_backbone,
    build_backbone,
    get_preset,
    load_backbone,
)

from ..part import load_part_weights, save_part
from ..task import DenseTaskConfig
from .config import DetectionOptions
from .neck import ViTSplitFPNBackbone

TASK = "detection"


class DetectionPart(nn.Module):
    """``forward(images, targets)`` as torchvision's Mask R-CNN: a list of ``(3, H, W)`` images in
    [0, 1]; training returns the loss dict, evaluation a list of ``{boxes, labels, scores, masks}``
    in the input images' pixels. Mask R-CNN's transform normalises (ImageNet statistics, DINOv2's),
    resizes and pads the batch to a multiple of twice the patch size.

    Building it re-patches the trunk to the part's patch size (DINOv2 14 -> 16, in place); the trunk
    runs inside the part's backbone through ``adapter``, without autograd.
    """

    def __init__(self, config: DenseTaskConfig, adapter: BackboneAdapter) -> None:
        super().__init__()
        self.config = config
        options = DetectionOptions.of(config)
        adapter.set_patch_size(options.patch_size)
        self.detector = MaskRCNN(
            ViTSplitFPNBackbone(ViTSplitHeads(config.split_config(), adapter), options.neck_norm),
            num_classes=len(options.category_ids) + 1,
            min_size=options.min_size,
            max_size=options.max_size,
            box_score_thresh=options.score_threshold,
            box_detections_per_img=options.detections_per_image,
            rpn_pre_nms_top_n_train=options.proposals[0],
            rpn_post_nms_top_n_train=options.proposals[0],
            rpn_pre_nms_top_n_test=options.proposals[1],
            rpn_post_nms_top_n_test=options.proposals[1],
            box_batch_size_per_image=options.rois_per_image,
        )
        self.detector.transform.size_divisible = 2 * options.patch_size  # the 0.5x level halves the grid
        self.options = options

    @property
    def fpn_backbone(self) -> ViTSplitFPNBackbone:
        return self.detector.backbone

    @property
    def vitsplit(self) -> ViTSplitHeads:
        return self.fpn_backbone.vitsplit

    @property
    def needed_hidden_states(self) -> frozenset[int]:
        return self.fpn_backbone.needed_hidden_states

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        return self.detector(images, targets)

    def task_head_parameters(self) -> Iterable[nn.Parameter]:
        return self.vitsplit.task_head.parameters()

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by part; ``head`` is RPN + RoI box and mask heads (Table 12's part)."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        counts = self.vitsplit.parameter_counts()
        counts["neck"] = count(self.fpn_backbone.pyramid)
        counts["fpn"] = count(self.fpn_backbone.fpn)
        counts["head"] = count(self.detector.rpn) + count(self.detector.roi_heads)
        return counts

    def save_pretrained(
        self, folder: str | Path, state_dict: Mapping[str, torch.Tensor] | None = None
    ) -> Path:
        return save_part(self, folder, state_dict)

    def load_weights(self, folder: str | Path) -> None:
        load_part_weights(self, folder)


class ViTSplitMaskRCNN(nn.Module):
    """A frozen trunk and one detection part: the standalone detector (``forward`` = the part's)."""

    def __init__(self, backbone: nn.Module, config: DenseTaskConfig) -> None:
        super().__init__()
        self.trunk = FrozenTrunk(backbone)
        self.part = DetectionPart(config, self.trunk.adapter)

    @property
    def config(self) -> DenseTaskConfig:
        return self.part.config

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        return self.part(images, targets)

    def parameter_counts(self) -> dict[str, int]:
        counts = self.part.parameter_counts()
        return {**counts, "total": sum(counts.values())}

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, backbone: str | Path | nn.Module | None = None
    ) -> ViTSplitMaskRCNN:
        """A trained part over ``backbone`` (default: the folder recorded at training)."""
        config = DenseTaskConfig.load(folder)
        backbone = backbone if backbone is not None else config.backbone
        if backbone is None:
            raise ValueError(f"{folder}: no backbone recorded; pass the backbone folder")
        model = cls(backbone if isinstance(backbone, nn.Module) else load_backbone(backbone), config)
        model.part.load_weights(folder)
        return model.eval()


def vitsplit_maskrcnn(
    preset: str = "coco-s",
    num_classes: int | None = None,
    *,
    class_names: tuple[str, ...] | None = None,
    backbone: str | Path | nn.Module | None = None,
    split_overrides: dict | None = None,
    **options,
) -> ViTSplitMaskRCNN:
    """Mask R-CNN on ViT-Split for a detection preset (Table 10: ``coco-s``, ``coco-b``, ``coco-l``).

    As torchvision's builders: ``num_classes`` counts the object classes (80 for COCO; the background
    is added), and without ``backbone`` the trunk is randomly initialised (``backbone`` = a loaded
    model or a local transformers folder, e.g. a patch-14 DINOv2, which is re-patched to 16).
    ``options`` set ``DetectionOptions`` fields (``category_ids``, ``min_size``, ``neck_norm``, ...).
    """
    spec = get_preset(preset)
    if spec.task != TASK:
        raise ValueError(
            f"preset {preset!r} is a {spec.task} preset; detection presets: coco-s, coco-b, coco-l"
        )
    if class_names is None:
        class_names = tuple(f"class_{i}" for i in range(1, (num_classes or spec.num_classes) + 1))
    elif num_classes is not None and num_classes != len(class_names):
        raise ValueError(f"num_classes = {num_classes} but {len(class_names)} class names were given")
    backbone_path = None
    if backbone is None:
        backbone = build_backbone(spec.backbone)
    elif not isinstance(backbone, nn.Module):
        backbone_path, backbone = str(backbone), load_backbone(backbone)
    adapter = adapt_backbone(backbone)
    split = spec.split_config(
        num_layers=adapter.num_layers, hidden_size=adapter.hidden_size, **(split_overrides or {})
    )
    options.setdefault("category_ids", tuple(range(1, len(class_names) + 1)))
    options.setdefault("patch_size", spec.patch_size or adapter.patch_size)
    config = DenseTaskConfig(
        task=TASK, split=dataclasses.asdict(split), class_names=tuple(class_names), preset=preset,
        backbone=backbone_path, options=DetectionOptions(**options).to_dict(),
    )  # fmt: skip
    return ViTSplitMaskRCNN(backbone, config)
