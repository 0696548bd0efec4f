"""`--group_by_modality_length`: each optimiser micro-step sees only image or only text samples.

Mixing text-only and image samples in one step wastes compute on padding and, with several GPUs,
leaves some ranks without images. Indices are shuffled within each modality and cut into
"megabatches" of `batch_size * world_size` (one micro-step across all ranks); within a megabatch
samples are dealt to the ranks so that their total lengths stay close. Megabatches of both
modalities are then shuffled together; the leftovers of both form one last, mixed megabatch.

The order depends only on (seed, epoch), so a resumed run replays it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class ModalityLengthGroupedSampler(Sampler[int]):
    """`lengths[i] > 0` for a sample with an image, `< 0` for text-only (LLaVA's convention)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, world_size: int, seed: int) -> None:
        if batch_size < 1 or world_size < 1:
            raise ValueError(f"batch_size and world_size must be >= 1, got {batch_size} and {world_size}")
        if any(length == 0 for length in lengths):
            raise ValueError("a sample length of 0 has no modality sign; lengths must be non-zero")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.world_size = world_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        megabatch_size = self.batch_size * self.world_size
        full, leftovers = [], []
        for is_image in (True, False):
            indices = [i for i, length in enumerate(self.lengths) if (length > 0) == is_image]
            shuffled = [indices[j] for j in torch.randperm(len(indices), generator=generator).tolist()]
            cut = len(shuffled) - len(shuffled) % megabatch_size
            full += [shuffled[start : start + megabatch_size] for start in range(0, cut, megabatch_size)]
            leftovers += shuffled[cut:]
        order = [full[j] for j in torch.randperm(len(full), generator=generator).tolist()]
        if leftovers:
            order.append(leftovers)
        for megabatch in order:
            yield from self._deal(megabatch)

    def _deal(self, megabatch: list[int]) -> list[int]:
        """Longest first, each sample to the rank with the least total length that still has room."""
        ranks: list[list[int]] = [[] for _ in range(self.world_size)]
        totals = [0] * self.world_size
        capacity = -(-len(megabatch) // self.world_size)
        for index in sorted(megabatch, key=lambda i: -abs(self.lengths[i])):
            rank = min((r for r in range(self.world_size) if len(ranks[r]) < capacity), key=lambda r: totals[r])
            ranks[rank].append(index)
            totals[rank] += abs(self.lengths[index])
        # Rank r takes the r-th per-device batch of each micro-step (accelerate's sharding).
        return [index for chunk in ranks for index in chunk]
