"""LLaVA-1.5 with a ViT-Split multimodal projector, plus ViT-Split dense heads.

The model classes are imported on first use (``llava_vitsplit.LlavaViTSplitForConditionalGeneration``),
so importing the package - and running the command line - does not load torch or transformers.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "LlavaViTSplitConfig": "llava_vitsplit.model",
    "LlavaViTSplitForConditionalGeneration": "llava_vitsplit.model",
    "LlavaViTSplitProcessor": "llava_vitsplit.model",
    "load_pretrained_model": "llava_vitsplit.model.builder",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'llava_vitsplit' has no attribute {name!r}")
