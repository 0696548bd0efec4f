"""Batches of LLaVA samples: right-padded ids and labels, and the images of the samples that have some.

Only the positions whose next token is supervised need logits. The batch says which
(`logits_to_keep`, a boolean `(batch, length)` mask that transformers' causal-LM heads accept)
and gives their targets already shifted (`shift_labels`), so the LM head and the cross-entropy
skip the system prompt, the questions and the image tokens. With a 49k-token vocabulary on a
small LLM (the CPU quick start) the head is a fifth of the model's compute per position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from .tokenize import IGNORE_INDEX


@dataclass
class LlavaDataCollator:
    """`pixel_values` is `(num_images, 3, H, W)` in sample order, absent when no sample has an image."""

    pad_token_id: int

    def __call__(self, samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        input_ids = pad_sequence([s["input_ids"] for s in samples], batch_first=True, padding_value=self.pad_token_id)
        labels = pad_sequence([s["labels"] for s in samples], batch_first=True, padding_value=IGNORE_INDEX)
        lengths = torch.tensor([len(s["input_ids"]) for s in samples])
        attention_mask = torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        batch = {
            "input_ids": input_ids,
            "labels": labels,
            "attention_mask": attention_mask.long(),
            "logits_to_keep": keep,
            "shift_labels": labels[:, 1:][keep[:, :-1]],
        }
        images = [s["pixel_values"] for s in samples if "pixel_values" in s]
        if images:  # each sample's (num_images, 3, H, W), in sample order: the order of its placeholders
            batch["pixel_values"] = torch.cat(images)
        return batch
