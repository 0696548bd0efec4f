"""The Mask R-CNN on ViT-Split: four scales, FPN, trunk frozen, parameters by part, save/load."""

import pytest
import torch

from llava_vitsplit.dense import DenseTaskConfig
from llava_vitsplit.dense.detection import SimpleFeaturePyramid, ViTSplitMaskRCNN, vitsplit_maskrcnn
from llava_vitsplit.split import build_backbone, get_preset

from .conftest import TINY_SIZES, TINY_SPLIT, tiny_dinov2_patch14


def tiny_model(**fields) -> ViTSplitMaskRCNN:
    return vitsplit_maskrcnn(
        "coco-s", class_names=("square", "bar"), backbone=tiny_dinov2_patch14(), category_ids=(3, 7),
        split_overrides=TINY_SPLIT, **{**TINY_SIZES, **fields},
    )  # fmt: skip


def test_four_scales_at_4x_2x_1x_half():
    maps = SimpleFeaturePyramid(64, "group")(torch.randn(2, 64, 6, 8))
    assert [tuple(m.shape[-2:]) for m in maps] == [(24, 32), (12, 16), (6, 8), (3, 4)]
    assert all(m.shape[:2] == (2, 64) for m in maps)


def test_fpn_levels_have_power_of_two_strides_after_repatching():
    model = tiny_model()
    assert model.trunk.adapter.patch_size == 16 and model.part.detector.transform.size_divisible == 32
    assert model.trunk.native_patch_size == 14
    features = model.part.fpn_backbone(torch.randn(1, 3, 64, 96))
    assert list(features) == ["0", "1", "2", "3", "pool"]
    assert [tuple(f.shape[-2:]) for f in features.values()] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    assert all(f.shape[1] == 256 for f in features.values())


def test_training_losses_and_only_the_part_learns():
    model = tiny_model().train()
    images = [torch.rand(3, 64, 64), torch.rand(3, 60, 72)]
    targets = [
        {"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0]]), "labels": torch.tensor([1]),
         "masks": torch.zeros(1, 64, 64, dtype=torch.uint8).index_fill_(1, torch.arange(4, 30), 1)},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
         "masks": torch.zeros(0, 60, 72, dtype=torch.uint8)},  # an image without objects trains too
    ]  # fmt: skip
    losses = model(images, targets)
    assert set(losses) == {
        "loss_classifier",
        "loss_box_reg",
        "loss_mask",
        "loss_objectness",
        "loss_rpn_box_reg",
    }
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.trunk.parameters())
    assert model.part.vitsplit.task_head[0].mlp.fc1.weight.grad.abs().sum() > 0
    assert not model.trunk.backbone.training  # the frozen trunk stays in eval mode


def test_inference_outputs_in_input_pixels():
    model = tiny_model().eval()
    with torch.no_grad():
        (output,) = model([torch.rand(3, 50, 70)])
    assert set(output) == {"boxes", "labels", "scores", "masks"}
    assert output["masks"].shape[1:] == (1, 50, 70)
    assert (output["boxes"][:, 2] <= 70).all() and (output["boxes"][:, 3] <= 50).all()


def test_save_and_load_round_trip(tmp_path):
    model = tiny_model().eval()
    backbone_dir = tmp_path / "backbone"
    model.trunk.backbone.save_pretrained(backbone_dir)
    folder = model.part.save_pretrained(tmp_path / "part")
    assert DenseTaskConfig.load(folder).task == "detection"
    loaded = ViTSplitMaskRCNN.from_pretrained(folder, backbone_dir)
    assert loaded.config == model.config and loaded.part.options.patch_size == 16
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model.part.fpn_backbone(x), loaded.part.fpn_backbone(x)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert loaded.trunk.adapter.patch_size == 16  # the patch-14 folder was re-patched on load


def test_config_rejects_what_cannot_work():
    split = tiny_model().config.split

    def config(class_names=("a",), **options):
        return DenseTaskConfig(task="detection", split=split, class_names=class_names, options=options)

    with pytest.raises(ValueError, match="category list is empty"):
        config(class_names=(), category_ids=[])
    with pytest.raises(ValueError, match="power of two"):
        config(category_ids=[1], patch_size=14)
    with pytest.raises(ValueError, match="2 category ids for 1 classes"):
        config(category_ids=[1, 2])
    with pytest.raises(ValueError, match="category_ids is missing"):
        config()
    with pytest.raises(ValueError, match=r"unknown \['anchors'\]"):
        config(category_ids=[1], anchors=3)
    with pytest.raises(ValueError, match="is a segmentation preset"):
        vitsplit_maskrcnn("ade20k-s", 3)


@pytest.mark.parametrize(
    ("preset", "total", "paper"),
    [("coco-s", 45_269_017, 45e6), ("coco-b", 121_353_241, 118e6), ("coco-l", 353_008_665, 348e6)],
)
def test_trainable_parameters_of_the_presets(preset, total, paper):
    """Table 12's Mask R-CNN head (RPN + RoI heads, no FPN) is 17.54M at every size; torchvision's has
    4,357 more (a background row in box regression and mask logits)."""
    spec = get_preset(preset)
    with torch.device("meta"):
        model = vitsplit_maskrcnn(
            preset, backbone=build_backbone(spec.backbone, patch_size=16, device="meta")
        )
    counts = model.parameter_counts()
    assert counts["head"] == 17_548_277
    assert counts["total"] == total == sum(p.numel() for p in model.part.parameters())
    assert abs(total - paper) / paper < 0.03
