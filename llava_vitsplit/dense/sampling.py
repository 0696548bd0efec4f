"""Which samples each process trains on: a (seed, epoch) shuffle, cut into global batches, sharded.

Being a pure function of (seed, epoch, rank), the order can be rebuilt at any step, so a resumed
run continues with exactly the batches the interrupted one would have seen.
"""

from __future__ import annotations

import torch


def epoch_batches(
    dataset_size: int, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """This process's batches for one epoch; the incomplete last global batch is dropped."""
    global_batch = batch_size * world_size
    if dataset_size < global_batch:
        raise ValueError(
            f"the training set has {dataset_size} samples, fewer than one global batch of {global_batch} "
            f"({batch_size} per process x {world_size} processes)"
        )
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(dataset_size, generator=generator).tolist()
    batches = []
    for start in range(0, dataset_size - global_batch + 1, global_batch):
        mine = start + rank * batch_size
        batches.append(order[mine : mine + batch_size])
    return batches
