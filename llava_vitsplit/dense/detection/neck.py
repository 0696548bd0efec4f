"""The fused ViT-Split map as a torchvision detection backbone: four scales, then FPN.

The single-scale fused map (stride = patch size) becomes 4x, 2x, 1x and 0.5x maps (two transposed
convolutions, one, identity, max-pool), each followed by a norm, as the authors' neck does; then
torchvision's ``FeaturePyramidNetwork`` (256 channels, plus the max-pooled extra level) gives the
``'0'..'3', 'pool'`` maps that Mask R-CNN's anchor generator and RoI poolers expect.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from llava_vitsplit.split import ViTSplitHeads, frozen_hidden_states

NeckNorm = Literal["batch", "group"]
FPN_CHANNELS = 256
GROUPS = 32


def _norm(kind: NeckNorm, channels: int) -> nn.Module:
    # SyncBatchNorm (the authors') needs a process group; convert with nn.SyncBatchNorm.convert_sync_batchnorm.
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.GroupNorm(GROUPS, channels)


def _up2(channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(channels, channels, kernel_size=2, stride=2)


class SimpleFeaturePyramid(nn.Module):
    """``(B, D, h, w)`` -> four ``(B, D, ...)`` maps at 4x, 2x, 1x and 0.5x the patch grid."""

    def __init__(self, channels: int, norm: NeckNorm = "batch") -> None:
        super().__init__()
        self.scales = nn.ModuleList(
            [
                nn.Sequential(_up2(channels), _norm(norm, channels), nn.GELU(), _up2(channels)),
                _up2(channels),
                nn.Identity(),
                nn.MaxPool2d(kernel_size=2, stride=2),
            ]
        )
        self.norms = nn.ModuleList([_norm(norm, channels) for _ in self.scales])

    def forward(self, fused: torch.Tensor) -> list[torch.Tensor]:
        return [norm(scale(fused)) for scale, norm in zip(self.scales, self.norms)]


class ViTSplitFPNBackbone(nn.Module):
    """ViT-Split heads + four-scale neck + FPN, over a frozen trunk it reads through the heads' adapter
    (the trunk is owned elsewhere, so this module's state is the trainable part only)."""

    out_channels = FPN_CHANNELS

    def __init__(self, vitsplit: ViTSplitHeads, norm: NeckNorm = "batch") -> None:
        super().__init__()
        width = vitsplit.config.resolved_fusion_width
        self.vitsplit = vitsplit
        self.pyramid = SimpleFeaturePyramid(width, norm)
        self.fpn = FeaturePyramidNetwork([width] * 4, FPN_CHANNELS, extra_blocks=LastLevelMaxPool())

    @property
    def needed_hidden_states(self) -> frozenset[int]:
        return self.vitsplit.config.needed_hidden_states

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        adapter = self.vitsplit.adapter
        grid = adapter.grid_size(*images.shape[-2:])
        return self.from_hidden_states(frozen_hidden_states(adapter, images, self.needed_hidden_states), grid)

    def from_hidden_states(
        self, hidden_states: Mapping[int, torch.Tensor], grid: tuple[int, int]
    ) -> OrderedDict[str, torch.Tensor]:
        """The FPN maps from a trunk pass made elsewhere (several tasks sharing one pass)."""
        levels = self.pyramid(self.vitsplit(hidden_states, grid))
        return self.fpn(OrderedDict((str(index), level) for index, level in enumerate(levels)))
