"""Device, dtype and attention kernel for loading: chosen automatically, said in a log line."""

from __future__ import annotations

import importlib.util
import logging

import torch

logger = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as asked, except that CUDA without a GPU falls back to the CPU (with a warning)."""
    resolved = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if resolved.type == "cuda" and not torch.cuda.is_available():
        logger.warning("device %r asked for, but CUDA is not available: using the CPU", str(device))
        return torch.device("cpu")
    return resolved


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on a GPU that supports it, else fp16 on GPU; fp32 on the CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def flash_attention_available() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None


def choose_attn_implementation(device: torch.device, dtype: torch.dtype) -> str:
    """``flash_attention_2`` on a GPU in half precision when the ``flash`` extra is installed, else ``sdpa``."""
    if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and flash_attention_available():
        choice = "flash_attention_2"
    else:
        choice = "sdpa"
    logger.info("attention implementation: %s (device %s, dtype %s)", choice, device, dtype)
    return choice
