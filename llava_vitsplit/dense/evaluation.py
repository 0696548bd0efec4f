"""Scoring a task over a dataset with the inference settings of ``inference.predict``.

Several processes each take every n-th image and add their metric sums together, so evaluation
under ``accelerate launch`` scores every image exactly once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .datasets import DenseDataset, DepthLabels, SegmentationLabels
from .inference import Forward, InferenceConfig, predict
from .metrics import DepthMetrics, SegmentationMetrics


def new_metrics(labels: SegmentationLabels | DepthLabels) -> SegmentationMetrics | DepthMetrics:
    if isinstance(labels, SegmentationLabels):
        return SegmentationMetrics(labels.num_classes, labels.ignore_index, labels.class_names)
    return DepthMetrics(max(labels.min_depth, 1e-6), labels.max_depth)


@torch.no_grad()
def evaluate(
    forward: Forward,
    dataset: DenseDataset,
    inference: InferenceConfig,
    *,
    task: str = "task",
    device: torch.device | str = "cpu",
    process_index: int = 0,
    num_processes: int = 1,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    max_images: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Metrics of output ``task`` of ``forward`` on ``dataset`` (``reduce`` sums states across processes)."""
    labels = dataset.labels
    metrics = new_metrics(labels)
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    activation = "softmax" if dataset.task == "segmentation" else "identity"
    indices = range(process_index, count, num_processes)
    for index in tqdm(indices, desc=f"eval {dataset.name}", disable=not show_progress, leave=False):
        sample = dataset[index]
        pixel_values = sample["pixel_values"].unsqueeze(0).to(device)
        output = predict(forward, pixel_values, inference, {task: activation})[task][0].cpu()
        target = sample["labels"]
        if dataset.task == "segmentation":
            metrics.update(output.argmax(0), target)
        else:
            mask = labels.eval_mask(tuple(target.shape))
            metrics.update(output[0], target, None if mask is None else torch.from_numpy(mask))
    if reduce is not None:
        metrics.state = reduce(metrics.state.to(device)).cpu()
    return metrics.compute()
