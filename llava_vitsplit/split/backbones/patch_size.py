"""Changing a ViT's patch size after pretraining: resample the patch kernel and the position grid.

The authors run detection at patch 16 on a patch-14 DINOv2. They resize the kernel bilinearly but
interpolate the position table as a flat 1-D sequence (1369 -> 1024 entries), which mixes rows into
one another. Here the table is resampled as the 2-D grid it is (37 x 37 -> 32 x 32), so a position
keeps its row and column.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def resample_patch_kernel(weight: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(D, C, p, p)`` -> ``(D, C, patch_size, patch_size)``, bilinear, as the authors do.

    The result is scaled by ``(p / patch_size)^2`` so that a patch of uniform colour gives the same
    token as before: a bigger kernel sums more pixels, and without the factor every token of a smooth
    region grows by ``(16/14)^2 = 1.31`` (the frozen blocks were trained on the old scale).
    """
    old = weight.shape[-1]
    if weight.shape[-2] != old:
        raise ValueError(f"patch kernel {tuple(weight.shape)} is not square")
    if patch_size < 1:
        raise ValueError(f"patch_size = {patch_size} must be >= 1")
    resized = F.interpolate(
        weight.float(), size=(patch_size, patch_size), mode="bilinear", align_corners=False
    )
    return (resized * (old / patch_size) ** 2).to(weight.dtype)


def resample_position_grid(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(N, D)`` position embeddings of a square ``sqrt(N) x sqrt(N)`` grid -> ``(h*w, D)`` for
    ``grid = (h, w)``, interpolated bicubically on the 2-D grid (row-major, as ViTs lay them out)."""
    count, dim = table.shape
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"{count} position embeddings do not form a square grid")
    image = table.float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    resized = F.interpolate(image, size=tuple(grid), mode="bicubic", align_corners=False)
    return resized.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], dim).to(table.dtype)
