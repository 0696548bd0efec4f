"""What the split module needs from a ViT, whatever library built it."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class BackboneAdapter(ABC):
    """A uniform view of a ViT: embeddings, the block list, the final norm, the prefix tokens.

    A plain object, not a module: whoever owns the library model (a trunk, a LLaVA model) keeps it
    as a child under its usual name, so checkpoints keep their usual keys; the adapter only reads it.
    """

    family: str
    """The tower family's name (``"clip"``, ``"siglip"``, ``"dinov2"``)."""
    config_model_types: tuple[str, ...]
    """transformers ``model_type`` of the vision configs this adapter reads."""
    features_after_final_norm: bool
    """Whether the family's features are meant to be read after its final norm (DINOv2) or raw
    (CLIP, SigLIP: LLaVA reads CLIP's hidden states without ``post_layernorm``)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    @property
    @abstractmethod
    def blocks(self) -> nn.ModuleList:
        """The transformer blocks, in order; ``blocks[i]`` produces ``hs[i + 1]``."""

    @property
    @abstractmethod
    def final_norm(self) -> nn.Module:
        """The norm after the last block (DINOv2 ``layernorm``, CLIP/SigLIP ``post_layernorm``)."""

    @property
    @abstractmethod
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens: CLS and registers."""

    @property
    def patch_size(self) -> int:
        return self.model.config.patch_size

    def set_patch_size(self, patch_size: int) -> None:
        """Re-patchify the loaded model in place (kernel and position table resampled, config updated).

        Families that support it override this; the others refuse rather than guess.
        """
        raise NotImplementedError(
            f"changing the patch size of a {type(self.model).__name__} is not supported "
            f"(only DINOv2 towers); it stays at {self.patch_size}"
        )

    @abstractmethod
    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``hs[0]``: tokens entering the first block, for any input size (position embeddings are
        interpolated when the size differs from the pretraining size)."""

    @staticmethod
    def run_block(block: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
        """One block forward; blocks of all supported families take ``(hidden, attention_mask)``."""
        return block(hidden_states, None)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid ``(h, w)`` for an input of ``height x width`` pixels (borders are dropped)."""
        if height < self.patch_size or width < self.patch_size:
            raise ValueError(
                f"input of {height}x{width} px is smaller than one {self.patch_size}x{self.patch_size} patch"
            )
        return height // self.patch_size, width // self.patch_size

    def tokens_to_map(self, tokens: torch.Tensor, grid: tuple[int, int], has_prefix: bool = True) -> torch.Tensor:
        """``(B, prefix + h*w, D)`` -> ``(B, D, h, w)``, dropping CLS/register tokens (``has_prefix=False``:
        the tokens are patches only)."""
        patches = tokens[:, self.num_prefix_tokens :] if has_prefix else tokens
        batch, count, dim = patches.shape
        if count != grid[0] * grid[1]:
            raise ValueError(f"{count} patch tokens do not fill a {grid[0]}x{grid[1]} grid")
        return patches.transpose(1, 2).reshape(batch, dim, *grid)
