"""Segmentation (aAcc, mIoU, mAcc, per-class IoU/Acc) and depth (AbsRel ... delta^3) metrics.

Both accumulate a small tensor of sums (``state``), so processes can add their states together
(``torch.distributed`` all-reduce) before ``compute``.

Segmentation follows MMSeg: one confusion matrix over all pixels of all images; a class's IoU is
NaN when it is absent from both labels and predictions, its Acc when absent from the labels; means
skip NaNs; values are percentages. ``mIoU_labelled`` (ours, not MMSeg's) averages IoU over the classes
present in the labels only: a class that is only predicted still costs the IoU of the classes whose
pixels it took, but does not add a zero of its own, so a few stray pixels of an absent class do not
move the mean by 1/(number of classes seen). Depth follows the NYU convention (Eigen et al.): each metric is
computed per image over its valid pixels, then averaged over images; predictions are clamped to the
depth range first.
"""

from __future__ import annotations

import math

import torch

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "delta1", "delta2", "delta3")


class SegmentationMetrics:
    """Accumulates a ``(C, C)`` confusion matrix: rows are labels, columns predictions."""

    def __init__(self, num_classes: int, ignore_index: int = 255, class_names=None) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes = {num_classes} must be >= 1")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = (
            tuple(class_names) if class_names is not None else tuple(map(str, range(num_classes)))
        )
        self.state = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """``prediction`` and ``target``: class ids of the same shape (any batch layout)."""
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(prediction.shape)} != label shape {tuple(target.shape)}"
            )
        prediction, target = prediction.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
        keep = target != self.ignore_index
        prediction, target = prediction[keep], target[keep]
        if target.numel() and (target.min() < 0 or target.max() >= self.num_classes):
            raise ValueError(f"label ids outside 0..{self.num_classes - 1} (ignore {self.ignore_index})")
        if prediction.numel() and (prediction.min() < 0 or prediction.max() >= self.num_classes):
            raise ValueError(f"predicted ids outside 0..{self.num_classes - 1}")
        flat = target * self.num_classes + prediction
        self.state += torch.bincount(flat, minlength=self.num_classes**2).view(
            self.num_classes, self.num_classes
        )

    def compute(self) -> dict:
        confusion = self.state.double()
        hits = confusion.diag()
        label_area = confusion.sum(1)
        union = label_area + confusion.sum(0) - hits
        iou = hits / union  # 0/0 -> NaN: class absent from labels and predictions
        acc = hits / label_area
        total = label_area.sum()
        return {
            "aAcc": 100 * (hits.sum() / total).item() if total > 0 else math.nan,
            "mIoU": 100 * _nanmean(iou),
            "mIoU_labelled": 100 * _nanmean(iou[label_area > 0]),
            "mAcc": 100 * _nanmean(acc),
            "per_class": [
                {"class": name, "IoU": 100 * i, "Acc": 100 * a}
                for name, i, a in zip(self.class_names, iou.tolist(), acc.tolist())
            ],
        }


class DepthMetrics:
    """Sums of per-image metrics and the number of images."""

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 10.0) -> None:
        if not 0 < min_depth < max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.state = torch.zeros(len(DEPTH_METRICS) + 1, dtype=torch.float64)

    def update(
        self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> None:
        """One image: ``prediction`` and ``target`` in metres, shape ``(H, W)``; ``mask`` narrows the
        valid pixels (e.g. the Eigen crop). Images without a valid pixel are skipped, not counted."""
        if prediction.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(prediction.shape)} != depth shape {tuple(target.shape)}"
            )
        prediction, target = prediction.double().cpu(), target.double().cpu()
        valid = (target > self.min_depth) & (target <= self.max_depth)
        if mask is not None:
            valid &= mask.cpu().bool()
        if not valid.any():
            return
        pred = prediction[valid].clamp(self.min_depth, self.max_depth)
        gt = target[valid]
        ratio = torch.maximum(pred / gt, gt / pred)
        values = torch.stack(
            [
                ((pred - gt).abs() / gt).mean(),
                ((pred - gt) ** 2 / gt).mean(),
                ((pred - gt) ** 2).mean().sqrt(),
                ((pred.log() - gt.log()) ** 2).mean().sqrt(),
                (pred.log10() - gt.log10()).abs().mean(),
                (ratio < 1.25).double().mean(),
                (ratio < 1.25**2).double().mean(),
                (ratio < 1.25**3).double().mean(),
            ]
        )
        self.state[:-1] += values
        self.state[-1] += 1

    def compute(self) -> dict:
        count = self.state[-1].item()
        if count == 0:
            return {name: math.nan for name in DEPTH_METRICS} | {"images": 0}
        means = (self.state[:-1] / count).tolist()
        return dict(zip(DEPTH_METRICS, means)) | {"images": int(count)}


def _nanmean(values: torch.Tensor) -> float:
    present = values[~values.isnan()]
    return present.mean().item() if present.numel() else math.nan


def format_segmentation_table(result: dict) -> str:
    """Per-class IoU/Acc table and the summary row, as MMSeg prints them (percentages)."""
    width = max(len("Class"), *(len(row["class"]) for row in result["per_class"]))
    lines = [f"{'Class':<{width}}  {'IoU':>6}  {'Acc':>6}"]
    for row in result["per_class"]:
        lines.append(f"{row['class']:<{width}}  {_pct(row['IoU'])}  {_pct(row['Acc'])}")
    lines.append("")
    lines.append(
        f"aAcc {_pct(result['aAcc'])}  mIoU {_pct(result['mIoU'])}  mAcc {_pct(result['mAcc'])}  "
        f"mIoU(labelled classes) {_pct(result['mIoU_labelled'])}"
    )
    return "\n".join(lines)


def format_depth_table(result: dict) -> str:
    header = "  ".join(f"{name:>8}" for name in DEPTH_METRICS)
    values = "  ".join(f"{result[name]:>8.4f}" for name in DEPTH_METRICS)
    return f"{header}\n{values}\n({result['images']} images)"


def _pct(value: float) -> str:
    return f"{'nan':>6}" if math.isnan(value) else f"{value:6.2f}"
