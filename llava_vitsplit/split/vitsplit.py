"""ViT-Split over one backbone: frozen trunk + trainable heads, image in, fused map out."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import adapt_backbone
from .config import ViTSplitConfig
from .heads import ViTSplitHeads
from .trunk import FrozenTrunk


def config_for_backbone(backbone: nn.Module, **fields) -> ViTSplitConfig:
    """A ``ViTSplitConfig`` whose L and D are read off ``backbone``; ``fields`` sets the rest."""
    adapter = adapt_backbone(backbone)
    return ViTSplitConfig(num_layers=adapter.num_layers, hidden_size=adapter.hidden_size, **fields)


class ViTSplit(nn.Module):
    """``pixel_values (B, 3, H, W)`` -> fused feature map ``(B, fusion_width, H // p, W // p)``.

    Only ``heads`` is trainable; ``trunk`` owns the frozen backbone.
    """

    def __init__(self, backbone: nn.Module, config: ViTSplitConfig) -> None:
        super().__init__()
        self.config = config
        self.trunk = FrozenTrunk(backbone)
        self.heads = ViTSplitHeads(config, self.trunk.adapter)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        grid = self.trunk.adapter.grid_size(*pixel_values.shape[-2:])
        hidden_states = self.trunk(pixel_values, self.config.needed_hidden_states)
        return self.heads(hidden_states, grid)
