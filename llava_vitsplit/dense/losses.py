"""Training losses: cross-entropy for segmentation, scale-invariant log loss for depth."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Pixel-averaged cross-entropy over labelled pixels; zero (with a graph) when none is labelled."""
    if not (labels != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=ignore_index)


def depth_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    min_depth: float = 1e-3,
    max_depth: float = 10.0,
    variance_focus: float = 0.85,
) -> torch.Tensor:
    """Eigen et al.'s scale-invariant log loss ``sqrt(mean(g^2) - lambda * mean(g)^2)``, ``g = log p - log t``,
    over pixels with ground truth (as BinsFormer and AdaBins train on NYU; lambda = 0.85)."""
    prediction = prediction.float().squeeze(1)
    valid = (target > min_depth) & (target <= max_depth)
    if not valid.any():
        return prediction.sum() * 0.0
    log_diff = prediction[valid].log() - target[valid].log()
    spread = (log_diff**2).mean() - variance_focus * log_diff.mean() ** 2
    return spread.clamp_min(1e-12).sqrt()
