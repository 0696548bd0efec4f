"""DINOv2 (with and without registers) from transformers.

Position embeddings at a grid other than the pretraining one (37x37 for the /14 models at 518 px)
are resized one of two ways (``position_interpolation``):

* ``"transformers"`` (default): ``Dinov2Model``'s own, bicubic to exactly the new grid;
* ``"dinov2"``: the original DINOv2 code's (``interpolate_pos_encoding`` of facebookresearch/dinov2,
  which torch.hub loads, and so the ViT-Split authors' backbone): bicubic by the scale factor
  ``(grid + 0.1) / 37`` with no antialiasing, so the samples sit slightly off the exact-grid ones.
  The two agree at 518 px and differ by a few per mille in the features elsewhere (448, 480, 896 px,
  NYU's 416x544). Plain ``Dinov2Model`` only: transformers' registers model already resizes as
  the original registers models do.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from transformers import Dinov2Model, Dinov2WithRegistersModel

from .base import BackboneAdapter
from .patch_size import resample_patch_kernel, resample_position_grid

POSITION_INTERPOLATIONS = ("transformers", "dinov2")
DINOV2_INTERPOLATE_OFFSET = 0.1  # the original's "historical kludge" against floating-point error


def dinov2_position_embeddings(
    position_embeddings: torch.Tensor, grid: tuple[int, int], offset: float = DINOV2_INTERPOLATE_OFFSET
) -> torch.Tensor:
    """``(1, 1 + M*M, D)`` pretrained embeddings (CLS first) -> ``(1, 1 + h*w, D)`` for a ``(h, w)``
    patch grid, as the original DINOv2 resizes them: in float32, bicubic, scale ``(h + offset) / M``."""
    cls_embedding, patches = position_embeddings[:, :1], position_embeddings[:, 1:]
    side, dim = math.isqrt(patches.shape[1]), patches.shape[2]
    if side * side != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} position embeddings do not form a square grid")
    if tuple(grid) == (side, side):
        return position_embeddings
    square = patches.float().reshape(1, side, side, dim).permute(0, 3, 1, 2)
    scale = ((grid[0] + offset) / side, (grid[1] + offset) / side)
    resized = F.interpolate(square, scale_factor=scale, mode="bicubic", antialias=False)
    if tuple(resized.shape[-2:]) != tuple(grid):
        raise ValueError(
            f"resizing {side}x{side} position embeddings by {scale} gave {tuple(resized.shape[-2:])}, not {grid}"
        )
    patches = resized.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat([cls_embedding.float(), patches], dim=1).to(position_embeddings.dtype)


class Dinov2Adapter(BackboneAdapter):
    model: Dinov2Model | Dinov2WithRegistersModel
    family = "dinov2"
    config_model_types = ("dinov2", "dinov2_with_registers")
    features_after_final_norm = True

    def __init__(self, model: nn.Module, position_interpolation: str = "transformers") -> None:
        super().__init__(model)
        if position_interpolation not in POSITION_INTERPOLATIONS:
            raise ValueError(
                f"position_interpolation = {position_interpolation!r}: choose one of {POSITION_INTERPOLATIONS}"
            )
        if position_interpolation == "dinov2" and isinstance(model, Dinov2WithRegistersModel):
            raise ValueError(
                "position_interpolation = 'dinov2' is for Dinov2Model; the registers model already resizes "
                "as the original registers models do"
            )
        self.position_interpolation = position_interpolation

    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.encoder.layer

    @property
    def final_norm(self) -> nn.Module:
        return self.model.layernorm

    @property
    def num_prefix_tokens(self) -> int:
        return 1 + getattr(self.model.config, "num_register_tokens", 0)

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.position_interpolation == "transformers":
            # DINOv2's embeddings interpolate position embeddings to any input size by themselves.
            return self.model.embeddings(pixel_values)
        embeddings = self.model.embeddings
        patches = embeddings.patch_embeddings(pixel_values)
        tokens = torch.cat([embeddings.cls_token.expand(len(patches), -1, -1), patches], dim=1)
        grid = self.grid_size(*pixel_values.shape[-2:])
        return embeddings.dropout(tokens + dinov2_position_embeddings(embeddings.position_embeddings, grid))

    def set_patch_size(self, patch_size: int) -> None:
        """The position table goes from ``image_size // p`` to ``image_size // patch_size`` per side
        (37 -> 32 at 518 px, the authors' 1369 -> 1024 entries); transformers then interpolates it to
        each input's grid as before."""
        if patch_size == self.patch_size:
            return
        embeddings = self.model.embeddings
        projection = embeddings.patch_embeddings.projection
        side = self.model.config.image_size // patch_size
        with torch.no_grad():
            kernel = resample_patch_kernel(projection.weight, patch_size)
            new_projection = nn.Conv2d(
                projection.in_channels, projection.out_channels, patch_size, stride=patch_size
            ).to(device=kernel.device, dtype=kernel.dtype)
            new_projection.weight.copy_(kernel)
            new_projection.bias.copy_(projection.bias)
            table = embeddings.position_embeddings[0]
            prefix = table[:1]  # the CLS position (registers carry no position embedding)
            grid = resample_position_grid(table[1:], (side, side))
            positions = torch.cat([prefix, grid])[None]
        new_projection.requires_grad_(projection.weight.requires_grad)
        embeddings.patch_embeddings.projection = new_projection
        embeddings.position_embeddings = nn.Parameter(
            positions, requires_grad=embeddings.position_embeddings.requires_grad
        )
        embeddings.patch_size = patch_size
        embeddings.patch_embeddings.patch_size = (patch_size, patch_size)
        embeddings.patch_embeddings.num_patches = side * side
        self.model.config.patch_size = patch_size
        self.model.config.image_size = side * patch_size
