"""The two-layer CNN of the prior head and the fusion net (paper Fig. 6)."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import DeformConv2d, deform_conv2d


class DeformableConv3x3(nn.Module):
    """DCNv1: a plain 3x3 conv predicts 18 offsets (x, y for 9 taps), a bias-free 3x3 deformable conv
    samples there. Offsets start at zero, so at initialisation this is exactly a plain 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.offset = nn.Conv2d(channels, 2 * 3 * 3, kernel_size=3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.conv = DeformConv2d(channels, channels, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset(x)
        if x.dtype in (torch.float32, torch.float64) and not torch.is_autocast_enabled(x.device.type):
            return self.conv(x, offset)
        # torchvision's deformable kernels have no bfloat16 (nor CPU float16): sample in float32,
        # so bf16 weights and bf16 autocast (the CPU quick start, DeepSpeed bf16) both work.
        with torch.autocast(x.device.type, enabled=False):
            out = deform_conv2d(
                x.float(), offset.float(), self.conv.weight.float(), padding=self.conv.padding
            )
        return out.to(x.dtype)


class ConvFusion(nn.Sequential):
    """1x1 conv -> GELU -> 3x3 conv (deformable or plain) -> GELU; no norm layers."""

    def __init__(self, in_channels: int, out_channels: int, conv: str = "deformable") -> None:
        spatial = (
            DeformableConv3x3(out_channels)
            if conv == "deformable"
            else nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        )
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size=1), nn.GELU(), spatial, nn.GELU())
