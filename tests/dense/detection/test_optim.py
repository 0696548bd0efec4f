"""Layer-wise lr decay over the task head's copied blocks, no decay on 1-D weights, the 1x schedule."""

import pytest
import torch

from llava_vitsplit.dense.detection import build_optimizer, build_scheduler, parameter_groups
from llava_vitsplit.dense.detection.optim import LAYER_DECAY, layer_scale, step_factor

from .test_model import tiny_model


def test_task_head_copies_decay_towards_the_input():
    # S: 11 copies; the last at 1.0, the first at 0.76 ** 10
    assert layer_scale("backbone.vitsplit.task_head.10.mlp.fc1.weight", 11, 0.76) == 1.0
    assert layer_scale("backbone.vitsplit.task_head.0.norm1.weight", 11, 0.76) == pytest.approx(0.76**10)
    assert layer_scale("backbone.vitsplit.prior_head.reduce.weight", 11, 0.76) == 1.0
    assert layer_scale("roi_heads.box_head.fc6.weight", 11, 0.76) == 1.0
    assert LAYER_DECAY == {"coco-s": 0.76, "coco-b": 0.7, "coco-l": 0.6}


def test_groups_cover_every_trainable_parameter_once():
    model = tiny_model()
    groups = parameter_groups(model, 1e-4, 0.05, 0.5)
    names = [n for g in groups for n in g["names"]]
    trainable = [n for n, p in model.detector.named_parameters() if p.requires_grad]
    assert sorted(names) == sorted(trainable) and len(names) == len(set(names))
    by_name = {n: g for g in groups for n in g["names"]}
    first, last = (
        "backbone.vitsplit.task_head.0.mlp.fc1.weight",
        "backbone.vitsplit.task_head.1.mlp.fc1.weight",
    )
    assert by_name[first]["lr"] == pytest.approx(0.5e-4) and by_name[last]["lr"] == pytest.approx(1e-4)
    assert by_name["backbone.vitsplit.task_head.0.mlp.fc1.bias"]["weight_decay"] == 0.0
    assert by_name["backbone.fpn.layer_blocks.0.0.weight"]["weight_decay"] == 0.05
    assert by_name["roi_heads.mask_head.0.0.bias"]["weight_decay"] == 0.0


def test_optimizer_and_1x_schedule():
    model = tiny_model()
    optimizer = build_optimizer(model, 1e-4, 0.05, 0.5)
    assert isinstance(optimizer, torch.optim.AdamW)
    scheduler = build_scheduler(optimizer, total=120, warmup=10, warmup_ratio=1e-3)
    lrs = []
    for _ in range(120):
        lrs.append(optimizer.param_groups[-1]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-7) and lrs[10] == pytest.approx(1e-4)
    assert (
        lrs[79] == pytest.approx(1e-4) and lrs[80] == pytest.approx(1e-5) and lrs[110] == pytest.approx(1e-6)
    )
    assert step_factor(5, 120, 10, 0.0) == pytest.approx(0.5)
