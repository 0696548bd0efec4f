"""Detection and a segmentation part from one trunk pass, and the mixes that must be refused."""

import pytest
import torch
from transformers import Dinov2Config, Dinov2Model

from llava_vitsplit.dense import DenseTaskConfig, DenseTaskPart, InferenceConfig
from llava_vitsplit.dense.detection import detect_with_dense_parts, vitsplit_maskrcnn
from llava_vitsplit.split import adapt_backbone, config_for_backbone, frozen_hidden_states

from .conftest import TINY_SIZES, TINY_SPLIT


def _patch8_dinov2() -> Dinov2Model:
    config = Dinov2Config(hidden_size=64, num_hidden_layers=4, num_attention_heads=2, intermediate_size=128,
                          patch_size=8, image_size=32)  # fmt: skip
    return Dinov2Model(config).eval()


def _models(detection_patch=8, segmentation_backbone=None, inference=None):
    backbone = _patch8_dinov2()
    detection = vitsplit_maskrcnn(
        "coco-s",
        2,
        backbone=backbone,
        split_overrides=TINY_SPLIT,
        **{**TINY_SIZES, "patch_size": detection_patch},
    ).eval()
    seg_backbone = segmentation_backbone or backbone
    split = config_for_backbone(seg_backbone, num_task_layers=1, num_prior_layers=2, prior_start_layer=1)
    config = DenseTaskConfig.from_split_config(
        "segmentation", split, class_names=("a", "b", "c"), inference=inference or InferenceConfig()
    )
    adapter = detection.trunk.adapter if segmentation_backbone is None else adapt_backbone(seg_backbone)
    return detection, DenseTaskPart(config, adapter).eval()


def test_one_pass_gives_what_each_part_gives_alone():
    torch.manual_seed(0)
    detection, part = _models()
    images = [torch.rand(3, 56, 72), torch.rand(3, 64, 48)]
    adapter = detection.trunk.adapter
    detections, dense = detect_with_dense_parts(detection.part, adapter, {"seg": part}, images, 8)
    with torch.no_grad():
        alone = detection(images)
        batch, _ = detection.part.detector.transform(images)
        states = frozen_hidden_states(adapter, batch.tensors, part.needed_hidden_states)
        seg_alone = part(states, adapter.grid_size(*batch.tensors.shape[-2:]))
    for shared, single in zip(detections, alone):
        assert torch.allclose(shared["boxes"], single["boxes"], atol=1e-4)
        assert torch.equal(shared["labels"], single["labels"])
    assert [tuple(o.shape) for o in dense["seg"]] == [(3, 56, 72), (3, 64, 48)]
    h, w = batch.image_sizes[
        0
    ]  # the shared output is the part's own output on that batch, cropped and resized
    padded = torch.nn.functional.interpolate(seg_alone, size=batch.tensors.shape[-2:], mode="bilinear")
    expected = torch.nn.functional.interpolate(padded[:1, :, :h, :w], size=(56, 72), mode="bilinear")[0]
    assert torch.allclose(dense["seg"][0], expected, atol=1e-5)


def test_mixes_that_cannot_share_a_pass_are_refused_with_the_reason():
    images = [torch.rand(3, 64, 64)]
    detection, part = _models(detection_patch=16)
    assert detection.trunk.native_patch_size == 8
    with pytest.raises(ValueError, match="'seg' was trained at patch 8, detection runs at patch 16"):
        detect_with_dense_parts(detection.part, detection.trunk.adapter, {"seg": part}, images, 8)
    detection, part = _models(segmentation_backbone=_patch8_dinov2())
    with pytest.raises(ValueError, match="other backbone weights"):
        detect_with_dense_parts(detection.part, part.vitsplit.adapter, {"seg": part}, images, 8)
    detection, part = _models(inference=InferenceConfig(mode="slide", crop_size=32, stride=16))
    with pytest.raises(ValueError, match="'seg' infers with slide windows"):
        detect_with_dense_parts(detection.part, detection.trunk.adapter, {"seg": part}, images, 8)
