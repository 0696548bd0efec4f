"""SigLIP vision towers from transformers: CLIP's layout without a CLS token or a pre-norm."""

from __future__ import annotations

import torch
from transformers import SiglipVisionModel

from .clip import ClipAdapter


class SiglipAdapter(ClipAdapter):
    model: SiglipVisionModel
    family = "siglip"
    config_model_types = ("siglip_vision_model",)

    @property
    def num_prefix_tokens(self) -> int:
        return 0

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.patch_embeddings(pixel_values)
