"""CLIP vision towers from transformers (LLaVA-1.5's CLIP-L/14-336)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPVisionModel

from .base import BackboneAdapter


class ClipAdapter(BackboneAdapter):
    model: CLIPVisionModel
    family = "clip"
    config_model_types = ("clip_vision_model",)
    features_after_final_norm = False

    @property
    def blocks(self) -> nn.ModuleList:
        return self.model.encoder.layers

    @property
    def final_norm(self) -> nn.Module:
        return self.model.post_layernorm

    @property
    def num_prefix_tokens(self) -> int:
        return 1

    def patch_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # Position embeddings are interpolated only off the pretraining size (transformers refuses
        # other sizes without the flag).
        native = self.model.config.image_size
        resize = tuple(pixel_values.shape[-2:]) != (native, native)
        return self.model.embeddings(pixel_values, interpolate_pos_encoding=resize)

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        # hs[0] of CLIP is taken after pre_layrnorm (transformers' convention).
        return self.model.pre_layrnorm(self.patch_embeddings(pixel_values))
