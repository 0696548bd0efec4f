"""Train two steps on a tiny COCO-format folder through the shared loop, evaluate with pycocotools,
write COCO results; the optimiser's layer-wise decay and the 1x step schedule."""

import json

import pytest
import torch

from llava_vitsplit.dense import get_recipe, get_task
from llava_vitsplit.dense.detection import (
    CocoDetectionDataset,
    ViTSplitMaskRCNN,
    coco_metrics,
    predict_records,
    write_results,
)
from llava_vitsplit.dense.schedules import build_scheduler
from llava_vitsplit.dense.trainer import DenseTrainConfig, parameter_groups, train

from .conftest import TINY_OPTIONS, TINY_SPLIT
from .test_model import tiny_model


def tiny_config(root, output, **overrides):
    fields = dict(backbone_path=None, iters=2, batch_size=2, warmup_iters=1, crop_size=(64, 96), split_overrides=TINY_SPLIT,
                  num_workers=0, log_interval=1, eval_interval=2, task_options=dict(TINY_OPTIONS))  # fmt: skip
    return DenseTrainConfig.from_preset("coco-s", root, output, **{**fields, **overrides})


def test_ground_truth_as_predictions_scores_100(coco_root):
    """The scoring path is pycocotools' and is exact: the annotations themselves give AP 100."""
    dataset = CocoDetectionDataset(coco_root, "val")
    records = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0,
         "segmentation": a["segmentation"]}
        for a in dataset.instances.coco.dataset["annotations"]
    ]  # fmt: skip
    metrics = coco_metrics(dataset, records)
    assert metrics["bbox_AP"] == pytest.approx(100) and metrics["segm_AP"] == pytest.approx(100)
    assert metrics["bbox_APl"] == -1.0  # no large objects in 64-px images: reported as absent
    assert coco_metrics(dataset, [])["segm_AP50"] == 0.0
    table = get_task("detection").format_metrics(metrics)
    assert "| bbox | 100.0 | 100.0 | 100.0 |" in table and "| - |" in table


def test_two_steps_then_pycocotools_ap(coco_root, backbone_dir, tmp_path):
    result = train(tiny_config(coco_root, tmp_path / "run", backbone_path=backbone_dir))
    (evaluation,) = result.evaluations
    metrics = evaluation["metrics"]
    assert evaluation["iter"] == 2 and set(metrics) >= {
        "bbox_AP",
        "bbox_AP50",
        "bbox_AP75",
        "segm_AP",
        "segm_APs",
    }
    assert all(0 <= metrics[k] <= 100 for k in ("bbox_AP", "bbox_AP50", "segm_AP"))
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log if "loss" in r] == [1, 2] and all(
        r["loss"] > 0 for r in log if "loss" in r
    )
    # the trained part reloads over its recorded backbone, re-patched to 16, and scores the same
    model = ViTSplitMaskRCNN.from_pretrained(result.final_dir)
    assert model.trunk.adapter.patch_size == 16
    dataset = CocoDetectionDataset(coco_root, "val")
    records = predict_records(lambda images: {"task": model(images)}, dataset, show_progress=False)
    assert coco_metrics(dataset, records) == pytest.approx(metrics, abs=1e-6)
    written = json.loads(write_results(records, tmp_path / "results.json").read_text())
    assert written and all(
        {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(r) for r in written
    )
    assert {r["category_id"] for r in written} <= {3, 7}


def test_the_recipe_is_the_authors():
    recipe = get_recipe("coco-s")
    assert (recipe.learning_rate, recipe.weight_decay, recipe.batch_size) == (1e-4, 0.05, 16)
    assert (recipe.schedule, recipe.layer_decay, recipe.task_head_lr_mult) == ("step", 0.76, 1.0)
    assert recipe.iters == 12 * recipe.eval_interval  # 12 epochs, evaluated after each
    assert (get_recipe("coco-b").layer_decay, get_recipe("coco-l").layer_decay) == (0.7, 0.6)


def test_layer_wise_decay_over_the_task_head_copies(coco_root):
    part = tiny_model().part  # K_t = 2 copies
    config = tiny_config(coco_root, "unused", learning_rate=1e-4, weight_decay=0.05, layer_decay=0.5)
    groups = parameter_groups(part, config)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    trainable = [p for p in part.parameters() if p.requires_grad]
    assert sorted(map(id, trainable)) == sorted(lr_of) and sum(len(g["params"]) for g in groups) == len(
        trainable
    )
    first, last = part.vitsplit.task_head
    assert lr_of[id(first.mlp.fc1.weight)] == pytest.approx(0.5e-4)  # copy 1 of 2: 0.5^1
    assert lr_of[id(last.mlp.fc1.weight)] == pytest.approx(1e-4)  # the last copy: 0.5^0
    assert lr_of[id(part.detector.roi_heads.box_head.fc6.weight)] == pytest.approx(1e-4)
    assert (
        wd_of[id(first.mlp.fc1.bias)] == 0.0
        and wd_of[id(part.fpn_backbone.fpn.layer_blocks[0][0].weight)] == 0.05
    )
    assert groups[0]["lr"] == pytest.approx(1e-4)  # group 0 is the base rate (what the log reports)


def test_1x_step_schedule_with_warmup():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    scheduler = build_scheduler(optimizer, "step", total=120, warmup=10, warmup_ratio=1e-3)
    lrs = []
    for _ in range(120):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-7) and lrs[10] == pytest.approx(1e-4) and lrs[79] == pytest.approx(1e-4)
    assert lrs[80] == pytest.approx(1e-5) and lrs[110] == pytest.approx(1e-6)  # epochs 8 and 11 of 12


def test_large_scale_jitter_is_a_train_option(coco_root, tmp_path):
    """`--scale-jitter PX`: each training image comes out a PX square (rescaled 0.1-2x, cropped or
    padded) with its boxes and masks following it; the per-pixel tasks refuse the option."""
    config = tiny_config(coco_root, tmp_path, scale_jitter=80)
    task = get_task("detection")
    dataset = CocoDetectionDataset(coco_root, "train", category_ids=(3, 7))
    dataset.transform = task.train_transform(config, dataset.labels)
    for index in range(len(dataset)):
        image, target = dataset[index]
        assert image.shape[-2:] == (80, 80) and target["masks"].shape[-2:] == (80, 80)
        boxes = target["boxes"]
        assert len(boxes) == len(target["masks"]) and (boxes[:, 2:] <= 80).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    dataset.transform = task.train_transform(tiny_config(coco_root, tmp_path), dataset.labels)
    stored = dataset.instances.images[dataset.image_ids[0]]
    assert dataset[0][0].shape[-2:] == (stored["height"], stored["width"])  # the 1x recipe: flip only
    with pytest.raises(ValueError, match="segmentation task has no large-scale jitter"):
        DenseTrainConfig.from_preset("ade20k-s", coco_root, tmp_path, scale_jitter=80)
    with pytest.raises(ValueError, match="scale_jitter = 0 must be >= 1"):
        tiny_config(coco_root, tmp_path, scale_jitter=0)
