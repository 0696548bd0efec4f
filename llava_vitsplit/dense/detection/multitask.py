"""Detection beside segmentation/depth parts from one frozen trunk pass.

Mask R-CNN's transform normalises, resizes and pads the batch; the trunk runs once on that batch,
as deep as the deepest part needs; the detection part and every dense part read the same hidden
states. That is only the same computation as running each alone when the parts agree on what the
trunk sees, so a mix is refused, with the reason, when:

* they run over different backbone weights (two models);
* their patch sizes differ (detection re-patches DINOv2 to 16; a part trained at 14 would get
  features it never saw);
* a dense part's inference needs other inputs (sliding windows, its own rescale, several scales or
  flips): in the shared pass every part sees the whole image at detection's input size.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from llava_vitsplit.split import BackboneAdapter, frozen_hidden_states, get_preset

from .model import DetectionPart


def part_patch_size(part: nn.Module, native_patch_size: int) -> int:
    """The patch size a dense part was trained at: its preset's, else the backbone's own."""
    preset = getattr(part.config, "preset", None)
    return (get_preset(preset).patch_size if preset else None) or native_patch_size


def shared_pass_problems(
    detection: DetectionPart, adapter: BackboneAdapter, parts: Mapping[str, nn.Module], native_patch_size: int
) -> list[str]:
    """Why ``parts`` cannot share the detection part's trunk pass over ``adapter`` (empty: they can).
    ``native_patch_size``: the backbone's patch size before detection re-patched it."""
    problems = []
    if adapter.model is not detection.vitsplit.adapter.model:
        problems.append("the dense parts run over other backbone weights than the detection part")
    for name, part in parts.items():
        patch = part_patch_size(part, native_patch_size)
        if patch != detection.options.patch_size:
            problems.append(
                f"part {name!r} was trained at patch {patch}, detection runs at patch {detection.options.patch_size}"
            )
        inference = part.config.inference
        if inference.mode != "whole" or inference.test_scale or inference.scales != (1.0,) or inference.flip:
            problems.append(
                f"part {name!r} infers with {inference.mode} windows / its own scales or flips; in a shared pass it "
                f"sees the whole image at detection's size (shorter side {detection.options.min_size[-1]})"
            )
    return problems


@torch.no_grad()
def detect_with_dense_parts(
    detection: DetectionPart,
    adapter: BackboneAdapter,
    parts: Mapping[str, nn.Module],
    images: list[torch.Tensor],
    native_patch_size: int,
) -> tuple[list[dict], dict[str, list[torch.Tensor]]]:
    """``(detections, {part: [output per image at its input size]})`` from one trunk pass."""
    problems = shared_pass_problems(detection, adapter, parts, native_patch_size)
    if problems:
        raise ValueError("these parts cannot share one trunk pass: " + "; ".join(problems))
    detector = detection.detector
    original_sizes = [tuple(image.shape[-2:]) for image in images]
    batch, _ = detector.transform(images)
    backbone = detection.fpn_backbone
    needed = backbone.needed_hidden_states.union(*(part.needed_hidden_states for part in parts.values()))
    hidden_states = frozen_hidden_states(adapter, batch.tensors, needed)
    grid = adapter.grid_size(*batch.tensors.shape[-2:])
    features = backbone.from_hidden_states(hidden_states, grid)
    proposals, _ = detector.rpn(batch, features)
    detections, _ = detector.roi_heads(features, proposals, batch.image_sizes)
    detections = detector.transform.postprocess(detections, batch.image_sizes, original_sizes)
    dense = {
        name: _per_image(part(hidden_states, grid), batch, original_sizes) for name, part in parts.items()
    }
    return detections, dense


def _per_image(output: torch.Tensor, batch, original_sizes) -> list[torch.Tensor]:
    """Padded-batch output -> each image's resized region -> the image's own size."""
    padded = F.interpolate(output, size=batch.tensors.shape[-2:], mode="bilinear", align_corners=False)
    return [
        F.interpolate(map_[None, :, :h, :w], size=size, mode="bilinear", align_corners=False)[0]
        for map_, (h, w), size in zip(padded, batch.image_sizes, original_sizes)
    ]
