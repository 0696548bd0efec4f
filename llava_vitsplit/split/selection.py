"""Which frozen layers feed the prior head: uniform sampling (eq. 2) or a learned sparse gate (B.1)."""

from __future__ import annotations

import torch
from torch import nn


def uniform_layer_ids(num_layers: int, num_prior_layers: int, start: int) -> tuple[int, ...]:
    """Eq. 2 with the authors' convention: ``start + int(i * gap)``, ``gap = (L - 1 - b) / (K_p - 1)``.

    Returns 0-based block ids. Truncation (``int``), not rounding, is what the released code does
    and what gives ADE20K-S/B blocks [2, 5, 8, 11].
    """
    if num_prior_layers == 1:
        ids = (start,)
    else:
        gap = (num_layers - 1 - start) / (num_prior_layers - 1)
        ids = tuple(start + int(i * gap) for i in range(num_prior_layers))
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"uniform selection of K_p={num_prior_layers} layers from b={start} over L={num_layers} blocks "
            f"repeats a block: {list(ids)}; lower num_prior_layers (K_p) or prior_start_layer (b)"
        )
    if ids[-1] >= num_layers:
        raise ValueError(f"uniform selection {list(ids)} exceeds the backbone's {num_layers} blocks")
    return ids


class SparseLayerGate(nn.Module):
    """Learned ``(L, K_p)`` gate that mixes the L frozen layer maps into K_p prior maps.

    Each column keeps its top-K_p layers (softmax over layers at ``temperature``), the rest are
    zeroed; the straight-through estimator lets gradients reach every score although the forward
    value is sparse. Columns are renormalised to sum to one.
    """

    def __init__(self, num_layers: int, num_prior_layers: int, temperature: float = 0.5) -> None:
        super().__init__()
        self.num_prior_layers = num_prior_layers
        self.temperature = temperature
        self.scores = nn.Parameter(torch.empty(num_layers, num_prior_layers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform random scores in [0, 1): no layer is preferred at the start."""
        nn.init.uniform_(self.scores)

    def gates(self) -> torch.Tensor:
        soft = torch.softmax(self.scores / self.temperature, dim=0)
        top = soft.topk(self.num_prior_layers, dim=0).indices
        sparse = torch.zeros_like(soft).scatter(0, top, soft.gather(0, top))
        gates = sparse - self.scores.detach() + self.scores
        return gates / gates.sum(dim=0, keepdim=True)

    def forward(self, layer_maps: torch.Tensor) -> torch.Tensor:
        """``layer_maps``: ``(B, L, D, h, w)`` -> ``(B, K_p * D, h, w)``."""
        mixed = torch.einsum("bldhw,lk->bkdhw", layer_maps, self.gates().to(layer_maps.dtype))
        return mixed.flatten(1, 2)
