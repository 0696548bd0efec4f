"""The two-layer CNN of the prior head and the fusion net (paper Fig. 6)."""

from __future__ import annotations

import torch
from torch import nn

from .deform_conv import DeformConv2d


class OffsetConv2d(nn.Conv2d):
    """The 3x3 conv that predicts DCNv1's sampling offsets (x, y for each of the 9 taps).

    Its ``reset_parameters`` zeroes it, so a fresh deformable conv samples the plain 3x3 grid; the
    hook is what ``torch.nn.Conv2d`` calls on construction and what transformers' ``init_weights``
    calls on a model materialised from the meta device.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, 2 * 3 * 3, kernel_size=3, padding=1)

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


class DeformableConv3x3(nn.Module):
    """DCNv1: a plain 3x3 conv predicts 18 offsets (x, y for 9 taps), a bias-free 3x3 deformable conv
    samples there. Offsets start at zero, so at initialisation this is exactly a plain 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.offset = OffsetConv2d(channels)
        self.conv = DeformConv2d(channels, channels, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x, self.offset(x))


class ConvFusion(nn.Sequential):
    """1x1 conv -> GELU -> 3x3 conv (deformable or plain) -> GELU; no norm layers."""

    def __init__(self, in_channels: int, out_channels: int, conv: str = "deformable") -> None:
        spatial = (
            DeformableConv3x3(out_channels)
            if conv == "deformable"
            else nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        )
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size=1), nn.GELU(), spatial, nn.GELU())
