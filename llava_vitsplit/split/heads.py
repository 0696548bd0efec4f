"""The trainable part of ViT-Split: task head, prior head (with optional sparse gate), fusion net."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from .backbones import BackboneAdapter
from .config import ViTSplitConfig
from .convs import ConvFusion
from .selection import SparseLayerGate


class ViTSplitHeads(nn.Module):
    """Maps frozen hidden states to the fused feature map ``(B, fusion_width, h, w)``.

    The task head is a deep copy of the K_t pretrained blocks that end at the split point, so at
    initialisation it reproduces the frozen ``hs[e]`` exactly.
    """

    def __init__(self, config: ViTSplitConfig, adapter: BackboneAdapter) -> None:
        super().__init__()
        if (config.num_layers, config.hidden_size) != (adapter.num_layers, adapter.hidden_size):
            raise ValueError(
                f"ViTSplitConfig is for {config.num_layers} blocks of width {config.hidden_size}, but the backbone "
                f"{type(adapter.model).__name__} has {adapter.num_layers} blocks of width {adapter.hidden_size}"
            )
        self.config = config
        self.adapter = adapter
        end = config.resolved_split_point
        task_blocks = [copy.deepcopy(adapter.blocks[i]) for i in range(end - config.num_task_layers, end)]
        self.task_head = nn.ModuleList(task_blocks).requires_grad_(True)
        self.gate = (
            SparseLayerGate(config.num_layers, config.num_prior_layers, config.gate_temperature)
            if config.selection == "sparse_gate"
            else None
        )
        width = config.hidden_size
        self.prior_head = ConvFusion(
            config.num_prior_layers * width, config.resolved_prior_width, config.conv
        )
        self.fusion = ConvFusion(
            config.resolved_prior_width + width, config.resolved_fusion_width, config.conv
        )

    def _to_map(self, tokens: torch.Tensor, grid: tuple[int, int], has_prefix: bool = True) -> torch.Tensor:
        if self.config.apply_final_norm:
            tokens = self.adapter.final_norm(tokens)
        return self.adapter.tokens_to_map(tokens, grid, has_prefix=has_prefix)

    def task_features(self, hidden_states: Mapping[int, torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        hidden = hidden_states[self.config.task_input_index].detach()
        with_prefix = self.config.task_head_prefix_tokens
        if not with_prefix:
            hidden = hidden[:, self.adapter.num_prefix_tokens :]
        for block in self.task_head:
            hidden = self.adapter.run_block(block, hidden)
        return self._to_map(hidden, grid, has_prefix=with_prefix)

    def prior_features(
        self, hidden_states: Mapping[int, torch.Tensor], grid: tuple[int, int]
    ) -> torch.Tensor:
        maps = [self._to_map(hidden_states[i + 1].detach(), grid) for i in self.config.prior_block_ids]
        if self.gate is not None:
            return self.gate(torch.stack(maps, dim=1))
        return torch.cat(maps, dim=1)

    def forward(self, hidden_states: Mapping[int, torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        prior = self.prior_head(self.prior_features(hidden_states, grid))
        return self.fusion(torch.cat([prior, self.task_features(hidden_states, grid)], dim=1))

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters by part, as the paper's Table 6 breaks them down."""

        def count(module: nn.Module | None) -> int:
            return 0 if module is None else sum(p.numel() for p in module.parameters())

        return {
            "task_head": count(self.task_head),
            "prior_head": count(self.prior_head) + count(self.gate),
            "fusion": count(self.fusion),
        }
