"""Dense prediction heads on the fused ViT-Split map (the authors' release, paper Table 12)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .recompute import group_norm_gelu_batch_norm_conv

GROUPS = 32  # GroupNorm groups in both heads


def _check_groups(field: str, channels: int) -> None:
    if channels % GROUPS:
        raise ValueError(f"{field} = {channels} must be divisible by {GROUPS} (the heads' GroupNorm groups)")


def _up2x(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2),
        nn.GroupNorm(GROUPS, out_channels),
        nn.GELU(),
    ]


def _upsample_then_tail(upsample: nn.Sequential, features: torch.Tensor, norm: nn.BatchNorm2d, conv: nn.Conv2d):
    """``conv(norm(upsample(features)))``, the 4x-resolution GroupNorm -> GELU -> ``norm`` -> ``conv``
    (``upsample[4:]``, ``norm``, ``conv``) trained without keeping its intermediates (``recompute.py``)."""
    return group_norm_gelu_batch_norm_conv(upsample[:4](features), upsample[4], norm, conv)


class SegmentationHead(nn.Module):
    """The "linear" head: two 2x transposed convs (4x the patch grid), BatchNorm, 1x1 classifier.

    ``forward`` returns logits at 4x the grid; ``resize`` them to the input size for the loss.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        _check_groups("in_channels (fusion width)", in_channels)
        if num_classes < 1:
            raise ValueError(f"num_classes = {num_classes} must be >= 1")
        self.upsample = nn.Sequential(*_up2x(in_channels, in_channels), *_up2x(in_channels, in_channels))
        self.norm = nn.BatchNorm2d(in_channels)
        self.classifier = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return _upsample_then_tail(self.upsample, features, self.norm, self.classifier)


class DepthHead(nn.Module):
    """ConvT(D, D/2) -> GN -> GELU -> ConvT(D/2, 64) -> GN -> GELU -> BN -> 3x3 conv -> ReLU + min depth."""

    def __init__(self, in_channels: int, min_depth: float = 1e-3) -> None:
        super().__init__()
        _check_groups("in_channels (fusion width)", in_channels)
        if in_channels // 2 % GROUPS:
            raise ValueError(f"in_channels / 2 = {in_channels // 2} must be divisible by {GROUPS}")
        if min_depth < 0:
            raise ValueError(f"min_depth = {min_depth} must be >= 0")
        self.min_depth = min_depth
        self.upsample = nn.Sequential(*_up2x(in_channels, in_channels // 2), *_up2x(in_channels // 2, 64))
        self.norm = nn.BatchNorm2d(64)
        self.predict = nn.Conv2d(64, 1, kernel_size=3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.relu(_upsample_then_tail(self.upsample, features, self.norm, self.predict)) + self.min_depth
