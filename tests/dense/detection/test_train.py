"""Train two steps on a tiny COCO-format folder, evaluate with pycocotools, write COCO results."""

import json

import pytest

from llava_vitsplit.dense.detection import (
    CocoDetectionDataset,
    DetectionTrainConfig,
    ViTSplitMaskRCNN,
    coco_metrics,
    evaluate_detection,
    train_detection,
)

from .conftest import TINY_SIZES, TINY_SPLIT


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


def test_two_steps_then_pycocotools_ap(coco_root, backbone_dir, tmp_path):
    config = DetectionTrainConfig(
        coco_root, tmp_path / "run", preset="coco-s", backbone_path=backbone_dir, iters=2, batch_size=2,
        warmup_iters=1, split_overrides=TINY_SPLIT, num_workers=0, log_interval=1, **TINY_SIZES,
    )  # fmt: skip
    result = train_detection(config)
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
    assert [r["iter"] for r in log if "loss_mask" in r] == [1, 2]
    assert (
        json.loads((tmp_path / "run" / "data_report.json").read_text())["train"]["images_without_annotations"]
        == 0
    )
    # the trained part reloads over its recorded backbone and writes a COCO results JSON
    model = ViTSplitMaskRCNN.from_pretrained(result.final_dir)
    results_file = tmp_path / "results.json"
    again = evaluate_detection(model, CocoDetectionDataset(coco_root, "val"), results_file=results_file)
    assert again == pytest.approx(metrics)
    records = json.loads(results_file.read_text())
    assert all({"image_id", "category_id", "bbox", "score", "segmentation"} <= set(r) for r in records)
    assert {r["category_id"] for r in records} <= {3, 7}
