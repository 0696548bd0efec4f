"""Batches of LLaVA samples: right-padded ids and labels, and the images of the samples that have some.

Only the positions whose next token is supervised need logits. The batch says which
(`logits_to_keep`, a boolean `(batch, length)` mask that transformers' causal-LM heads accept)
and gives their targets already shifted (`shift_labels`), so the LM head and the cross-entropy
skip the system prompt, the questions and the image tokens. With a 49k-token vocabulary on a
small LLM (the CPU quick start) the head is a fifth of the model's compute per position.

`padding_free=True` (`--padding_free`, TRL's name for it) puts the batch's samples end to end in
one row instead of padding them to the longest: `position_ids` restart at 0 for each sample and
no `attention_mask` is passed, from which transformers builds a block-diagonal causal mask (for
sdpa and eager; flash-attention reads the same `position_ids`), so no sample attends to another.
Each sample's targets are shifted within the sample, so none is predicted across a boundary, and
the loss (a mean over supervised tokens) is the padded batch's to float tolerance: the same
samples per step, no padding computed. The price is attention over the whole row: with sdpa the
masked blocks are still computed, so this pays where samples differ in length and are short
beside the model's width (measured in docs/training.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from .tokenize import IGNORE_INDEX


def supervised_positions(labels: torch.Tensor) -> torch.Tensor:
    """`keep[i]`: position i predicts a supervised token (the next one's label is not ignored)."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:-1] = labels[1:] != IGNORE_INDEX
    return keep


@dataclass
class LlavaDataCollator:
    """`pixel_values` is `(num_images, 3, H, W)` in sample order, absent when no sample has an image."""

    pad_token_id: int
    padding_free: bool = False

    def __call__(self, samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        keeps = [supervised_positions(s["labels"]) for s in samples]
        shift_labels = torch.cat([s["labels"][1:][keep[:-1]] for s, keep in zip(samples, keeps)])
        batch = self._flat(samples, keeps) if self.padding_free else self._padded(samples, keeps)
        batch["shift_labels"] = shift_labels
        images = [s["pixel_values"] for s in samples if "pixel_values" in s]
        if images:  # each sample's (num_images, 3, H, W), in sample order: the order of its placeholders
            batch["pixel_values"] = torch.cat(images)
        return batch

    def _padded(self, samples, keeps) -> dict[str, torch.Tensor]:
        input_ids = pad_sequence([s["input_ids"] for s in samples], batch_first=True, padding_value=self.pad_token_id)
        lengths = torch.tensor([len(s["input_ids"]) for s in samples])
        return {
            "input_ids": input_ids,
            "labels": pad_sequence([s["labels"] for s in samples], batch_first=True, padding_value=IGNORE_INDEX),
            "attention_mask": (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long(),
            "logits_to_keep": pad_sequence(keeps, batch_first=True, padding_value=False),
        }

    def _flat(self, samples, keeps) -> dict[str, torch.Tensor]:
        return {
            "input_ids": torch.cat([s["input_ids"] for s in samples])[None],
            "labels": torch.cat([s["labels"] for s in samples])[None],
            "position_ids": torch.cat([torch.arange(len(s["input_ids"])) for s in samples])[None],
            "logits_to_keep": torch.cat(keeps)[None],
            # A cache would hide the packed layout from transformers' mask builder (training needs none).
            "use_cache": False,
        }
