"""DINOv2 (with and without registers) from transformers."""

from __future__ import annotations

import torch
from torch import nn
from transformers import Dinov2Model, Dinov2WithRegistersModel

from .base import BackboneAdapter
from .patch_size import resample_patch_kernel, resample_position_grid


class Dinov2Adapter(BackboneAdapter):
    model: Dinov2Model | Dinov2WithRegistersModel

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
        # DINOv2's embeddings interpolate position embeddings to any input size by themselves.
        return self.model.embeddings(pixel_values)

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
