"""SigLIP vision towers from transformers (no CLS token)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import SiglipVisionModel

from .base import BackboneAdapter


class SiglipAdapter(BackboneAdapter):
    model: SiglipVisionModel

    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.encoder.layers

    @property
    def final_norm(self) -> nn.Module:
        return self.model.post_layernorm

    @property
    def num_prefix_tokens(self) -> int:
        return 0

    @property
    def patch_size(self) -> int:
        return self.model.config.patch_size

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        native = self.model.config.image_size
        resize = tuple(pixel_values.shape[-2:]) != (native, native)
        return self.model.embeddings(pixel_values, interpolate_pos_encoding=resize)
