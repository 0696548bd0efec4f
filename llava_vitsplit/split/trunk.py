"""The frozen part of the backbone: runs once, without autograd, only as deep as needed."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .backbones import BackboneAdapter, adapt_backbone


@torch.no_grad()
def frozen_hidden_states(
    adapter: BackboneAdapter, pixel_values: torch.Tensor, needed: Iterable[int]
) -> dict[int, torch.Tensor]:
    """``{i: hs[i]}`` for every ``i`` in ``needed`` (``hs[0]`` = embedding output).

    Runs under ``torch.no_grad()`` and stops at the deepest requested state, so no activation is
    kept for backward and no block past the last one needed is computed. This is where
    ViT-Split's training speed-up over full fine-tuning comes from.
    """
    needed = set(needed)
    deepest = max(needed)
    if deepest > adapter.num_layers:
        raise ValueError(f"hidden state hs[{deepest}] requested from a {adapter.num_layers}-block backbone")
    hidden = adapter.embed(pixel_values)
    states = {0: hidden} if 0 in needed else {}
    for index, block in enumerate(adapter.blocks[:deepest], start=1):
        hidden = adapter.run_block(block, hidden)
        if index in needed:
            states[index] = hidden
    return states


class FrozenTrunk(nn.Module):
    """Owns a backbone, keeps it frozen and in eval mode, and returns the requested hidden states."""

    def __init__(self, backbone: nn.Module, **adapter_options) -> None:
        super().__init__()
        self.backbone = backbone
        self.adapter: BackboneAdapter = adapt_backbone(backbone, **adapter_options)
        self.native_patch_size = self.adapter.patch_size  # before any part re-patches it (detection: 16)
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True) -> FrozenTrunk:
        super().train(mode)
        self.backbone.eval()  # frozen: no dropout or drop-path, whatever the rest of the model does
        return self

    def forward(self, pixel_values: torch.Tensor, needed: Iterable[int]) -> dict[int, torch.Tensor]:
        return frozen_hidden_states(self.adapter, pixel_values, needed)
