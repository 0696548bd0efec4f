"""ViT-Split Mask R-CNN: a frozen trunk and one trainable detection part (split heads, neck, FPN,
torchvision's RPN and RoI box/mask heads), plus a torchvision-style builder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision.models.detection import MaskRCNN

from llava_vitsplit.split import (
    FrozenTrunk,
    ViTSplitHeads,
    adapt_backbone,
    build_backbone,
    get_preset,
    load_backbone,
)

from ..model import WEIGHTS_FILE
from .config import DetectionConfig
from .neck import ViTSplitFPNBackbone


class ViTSplitMaskRCNN(nn.Module):
    """``forward(images, targets)`` as torchvision's Mask R-CNN: a list of ``(3, H, W)`` images in
    [0, 1]; training returns the loss dict, evaluation a list of ``{boxes, labels, scores, masks}``
    in the input images' pixels. Mask R-CNN's transform normalises (ImageNet statistics, DINOv2's),
    resizes and pads the batch to a multiple of twice the patch size."""

    def __init__(self, backbone: nn.Module, config: DetectionConfig) -> None:
        super().__init__()
        self.config = config
        adapter = adapt_backbone(backbone)
        self.native_patch_size = adapter.patch_size  # before re-patching: what other parts were trained at
        adapter.set_patch_size(config.patch_size)
        self.trunk = FrozenTrunk(backbone)
        heads = ViTSplitHeads(config.split_config(), self.trunk.adapter)
        self.detector = MaskRCNN(
            ViTSplitFPNBackbone(heads, config.neck_norm),
            num_classes=config.num_classes + 1,
            min_size=config.min_size,
            max_size=config.max_size,
            box_score_thresh=config.score_threshold,
            box_detections_per_img=config.detections_per_image,
            rpn_pre_nms_top_n_train=config.proposals[0],
            rpn_post_nms_top_n_train=config.proposals[0],
            rpn_pre_nms_top_n_test=config.proposals[1],
            rpn_post_nms_top_n_test=config.proposals[1],
            box_batch_size_per_image=config.rois_per_image,
        )
        self.detector.transform.size_divisible = 2 * config.patch_size  # the 0.5x level halves the grid

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        return self.detector(images, targets)

    @property
    def fpn_backbone(self) -> ViTSplitFPNBackbone:
        return self.detector.backbone

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by part; ``head`` is RPN + RoI box and mask heads (Table 12's part)."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        backbone = self.fpn_backbone
        counts = backbone.vitsplit.parameter_counts()
        counts["neck"] = count(backbone.pyramid)
        counts["fpn"] = count(backbone.fpn)
        counts["head"] = count(self.detector.rpn) + count(self.detector.roi_heads)
        counts["total"] = sum(counts.values())
        return counts

    def save_pretrained(self, folder: str | Path) -> Path:
        """``dense_task.json`` + ``model.safetensors`` of the detection part (never the trunk)."""
        folder = Path(folder)
        self.config.save(folder)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.detector.state_dict().items()}
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "task": self.config.task})
        return folder

    def load_weights(self, folder: str | Path) -> None:
        path = Path(folder) / WEIGHTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no {WEIGHTS_FILE}")
        state = load_file(str(path))
        expected = self.detector.state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        wrong = [k for k in set(state) & set(expected) if state[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(
                f"{path}: missing tensors {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
            )
        self.detector.load_state_dict(state)

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, backbone: str | Path | nn.Module | None = None
    ) -> ViTSplitMaskRCNN:
        """A trained part over ``backbone`` (default: the folder recorded at training)."""
        config = DetectionConfig.load(folder)
        backbone = backbone if backbone is not None else config.backbone
        if backbone is None:
            raise ValueError(f"{folder}: no backbone recorded; pass the backbone folder")
        if not isinstance(backbone, nn.Module):
            backbone = load_backbone(backbone)
        model = cls(backbone, config)
        model.load_weights(folder)
        return model.eval()


def vitsplit_maskrcnn(
    preset: str = "coco-s",
    num_classes: int | None = None,
    *,
    class_names: tuple[str, ...] | None = None,
    category_ids: tuple[int, ...] | None = None,
    backbone: str | Path | nn.Module | None = None,
    split_overrides: dict | None = None,
    **config_fields,
) -> ViTSplitMaskRCNN:
    """Mask R-CNN on ViT-Split for a detection preset (Table 10: ``coco-s``, ``coco-b``, ``coco-l``).

    As torchvision's builders: ``num_classes`` excludes nothing but the background (80 for COCO), and
    without ``backbone`` the trunk is randomly initialised (``backbone`` = a loaded model or a local
    transformers folder, e.g. a patch-14 DINOv2, which is re-patched to 16). ``config_fields`` set
    ``DetectionConfig`` fields (``min_size``, ``max_size``, ``neck_norm``, ...).
    """
    spec = get_preset(preset)
    if spec.task != "detection":
        raise ValueError(
            f"preset {preset!r} is a {spec.task} preset; detection presets: coco-s, coco-b, coco-l"
        )
    if class_names is None:
        count = num_classes if num_classes is not None else spec.num_classes
        class_names = tuple(f"class_{index}" for index in range(1, count + 1))
    elif num_classes is not None and num_classes != len(class_names):
        raise ValueError(f"num_classes = {num_classes} but {len(class_names)} class names were given")
    backbone_path = None
    if backbone is None:
        backbone = build_backbone(spec.backbone)
    elif not isinstance(backbone, nn.Module):
        backbone_path = str(backbone)
        backbone = load_backbone(backbone)
    adapter = adapt_backbone(backbone)
    split = spec.split_config(
        num_layers=adapter.num_layers, hidden_size=adapter.hidden_size, **(split_overrides or {})
    )
    config = DetectionConfig(
        split=dataclasses.asdict(split),
        class_names=tuple(class_names),
        category_ids=tuple(category_ids or range(1, len(class_names) + 1)),
        patch_size=config_fields.pop("patch_size", spec.patch_size or adapter.patch_size),
        preset=preset,
        backbone=backbone_path,
        **config_fields,
    )
    return ViTSplitMaskRCNN(backbone, config)
