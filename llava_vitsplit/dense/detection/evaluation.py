"""COCO box and mask AP with pycocotools, and predictions as a COCO results JSON."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DataLoader
from tqdm import tqdm

from .dataset import CocoDetectionDataset, collate
from .model import ViTSplitMaskRCNN

MASK_THRESHOLD = 0.5
STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def to_coco_results(output: dict, image_id: int, category_ids: tuple[int, ...]) -> list[dict]:
    """One image's Mask R-CNN output -> COCO result records (xywh boxes, RLE masks, category ids)."""
    boxes = output["boxes"].float().cpu()
    boxes[:, 2:] -= boxes[:, :2]
    masks = (output["masks"][:, 0] > MASK_THRESHOLD).cpu().numpy().astype(np.uint8)
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0))) if len(masks) else []
    records = []
    for box, label, score, rle in zip(
        boxes.tolist(), output["labels"].tolist(), output["scores"].tolist(), rles
    ):
        rle["counts"] = rle["counts"].decode("ascii")
        records.append(
            {"image_id": image_id, "category_id": category_ids[label - 1], "bbox": [round(v, 2) for v in box],
             "score": round(score, 5), "segmentation": rle}
        )  # fmt: skip
    return records


@torch.no_grad()
def predict_dataset(
    model: ViTSplitMaskRCNN, dataset: CocoDetectionDataset, batch_size: int = 1, max_images: int | None = None
) -> list[dict]:
    """COCO result records for every image of ``dataset`` (or the first ``max_images``)."""
    model.eval()
    device = next(model.detector.parameters()).device
    indices = range(len(dataset) if max_images is None else min(max_images, len(dataset)))
    loader = DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size, collate_fn=collate)
    records = []
    for images, targets in tqdm(loader, desc="detect", leave=False):
        outputs = model([image.to(device) for image in images])
        for output, target in zip(outputs, targets):
            records += to_coco_results(output, target["image_id"], model.config.category_ids)
    return records


def coco_metrics(
    dataset: CocoDetectionDataset, records: list[dict], image_ids: list[int] | None = None
) -> dict:
    """``bbox_AP``, ``bbox_AP50``, ... ``segm_APl`` in percent (COCO's 12 numbers per type; the six
    AP ones are returned). No detection at all scores 0."""
    ground_truth = dataset.instances.coco
    metrics = {}
    for iou_type in ("bbox", "segm"):
        if not records:
            metrics.update({f"{iou_type}_{name}": 0.0 for name in STAT_NAMES})
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator = COCOeval(ground_truth, ground_truth.loadRes(records), iou_type)
            if image_ids is not None:
                evaluator.params.imgIds = image_ids
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        # -1 means "no ground truth of that size": reported as such, not as a score.
        metrics.update(
            {
                f"{iou_type}_{n}": float(v) * 100 if v >= 0 else -1.0
                for n, v in zip(STAT_NAMES, evaluator.stats)
            }
        )
    return metrics


def evaluate_detection(
    model: ViTSplitMaskRCNN,
    dataset: CocoDetectionDataset,
    *,
    max_images: int | None = None,
    results_file: str | Path | None = None,
) -> dict:
    """Predict, optionally write the COCO results JSON, and score with pycocotools."""
    records = predict_dataset(model, dataset, max_images=max_images)
    if results_file is not None:
        Path(results_file).parent.mkdir(parents=True, exist_ok=True)
        Path(results_file).write_text(json.dumps(records), encoding="utf-8")
    image_ids = dataset.image_ids[:max_images] if max_images is not None else None
    return coco_metrics(dataset, records, image_ids)
