"""DINOv2 (with and without registers) from transformers."""

from __future__ import annotations

import torch
from torch import nn
from transformers import Dinov2Model, Dinov2WithRegistersModel

from .base import BackboneAdapter


class Dinov2Adapter(BackboneAdapter):
    model: Dinov2Model | Dinov2WithRegistersModel
    family = "dinov2"
    config_model_types = ("dinov2", "dinov2_with_registers")
    features_after_final_norm = True

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
