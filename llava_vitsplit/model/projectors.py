"""The multimodal projectors: ViT-Split (``official`` / ``paper``), LLaVA's 2-layer MLP, linear.

Key names follow transformers' Llava (``linear_1``/``linear_2`` for the MLP), so a ``llava-hf``
checkpoint loads without renaming; LLaVA's own ``mm_projector.0/2`` names are mapped on import
(``projector_io``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

from llava_vitsplit.split import BackboneAdapter, ViTSplitHeads

from .configuration import LlavaViTSplitConfig


class ViTSplitProjector(nn.Module):
    """ViT-Split as LLaVA's projector: frozen hidden states in, one LLM-width token per patch out.

    ``official`` fuses straight to the LLM width (the authors' release); ``paper`` fuses at the tower
    width and maps to the LLM width with a final linear layer (``to_llm``).
    """

    def __init__(self, config: LlavaViTSplitConfig, adapter: BackboneAdapter) -> None:
        super().__init__()
        self.split_config = config.split_config
        self.heads = ViTSplitHeads(self.split_config, adapter)
        self.to_llm = (
            nn.Linear(self.split_config.resolved_fusion_width, config.text_config.hidden_size)
            if config.vitsplit_variant == "paper"
            else None
        )

    @property
    def adapter(self) -> BackboneAdapter:
        return self.heads.adapter

    def forward(self, hidden_states: Mapping[int, torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        fused = self.heads(hidden_states, grid)  # (B, C, h, w)
        tokens = fused.flatten(2).transpose(1, 2)  # (B, h*w, C), row-major like the patch order
        return tokens if self.to_llm is None else self.to_llm(tokens)


def build_projector(config: LlavaViTSplitConfig, adapter: BackboneAdapter) -> nn.Module:
    """The projector module named by ``config.projector_type``, over the tower behind ``adapter``."""
    if config.projector_type == "vitsplit":
        return ViTSplitProjector(config, adapter)
    if config.projector_type == "mlp2x_gelu":
        return LlavaMultiModalProjector(config)
    in_features = config.vision_config.hidden_size * len(config.feature_hidden_state_indices)
    return nn.Linear(in_features, config.text_config.hidden_size, bias=config.multimodal_projector_bias)
