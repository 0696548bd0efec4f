"""Scoring a task part over a dataset with the inference settings of ``inference.predict``.

Several processes each take every n-th image and add their metric sums together, so evaluation
under ``accelerate launch`` scores every image exactly once. The scoring itself is the task's
(``DenseTask.evaluate``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .datasets import DenseDataset
from .inference import Forward, InferenceConfig
from .tasks import Sharding, get_task


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
    gather: Callable[[list], list] | None = None,
    max_images: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Metrics of output ``task`` of ``forward`` on ``dataset`` (``reduce`` sums tensors across
    processes, ``gather`` collects lists from them)."""
    sharding = Sharding(
        process_index, num_processes, reduce or Sharding.reduce_sum, gather or Sharding.gather
    )
    return get_task(dataset.task).evaluate(
        forward,
        dataset,
        inference,
        output=task,
        device=device,
        sharding=sharding,
        max_images=max_images,
        show_progress=show_progress,
    )
