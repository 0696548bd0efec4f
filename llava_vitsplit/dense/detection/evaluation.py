"""COCO box and mask AP with pycocotools, and predictions as a COCO results JSON."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval
from tqdm.auto import tqdm

from .dataset import CocoDetectionDataset

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
def predict_records(
    forward: Callable[[list[torch.Tensor]], Mapping[str, list[dict]]],
    dataset: CocoDetectionDataset,
    *,
    output: str = "task",
    device: torch.device | str = "cpu",
    shard: tuple[int, int] = (0, 1),
    max_images: int | None = None,
    show_progress: bool = True,
) -> list[dict]:
    """COCO result records of ``forward`` (images -> ``{output: [detections]}``) on this process's
    share (every ``shard[1]``-th image from ``shard[0]``) of the first ``max_images`` images."""
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    records = []
    for index in tqdm(
        range(shard[0], count, shard[1]),
        desc=f"detect {dataset.name}",
        disable=not show_progress,
        leave=False,
    ):
        image, target = dataset[index]
        (prediction,) = forward([image.to(device)])[output]
        records += to_coco_results(prediction, target["image_id"], dataset.labels.category_ids)
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


def write_results(records: list[dict], path: str | Path) -> Path:
    """The COCO results JSON (the format of the COCO evaluation server)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records), encoding="utf-8")
    return path
