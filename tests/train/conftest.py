"""Fixtures: small real tokenizers trained in memory, and tiny random model parts with data.

Three styles: SentencePiece-like (Metaspace, BOS added, `</s>`), byte-level BPE like GPT-2 /
SmolLM2 (no BOS, `<|im_end|>`), and one whose merges cross word boundaries (to provoke a
tokenization mismatch). Each has `<image>` as a special token, as `from_parts` adds it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
    "helpful, detailed, and polite answers to the user's questions.",
    "USER: What colour is the circle? ASSISTANT: Red.",
    "USER: How many shapes are there? ASSISTANT: There are 2 shapes.",
    "There are two squares and a triangle on the left. A blue circle is at the top right.",
    "Is there a green triangle in the image? Yes. No. Where is the square?",
]


def _metaspace_tokenizer(split: bool) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=split)
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
        initial_alphabet=list("\n0123456789"),
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
    )
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    wrapped.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return wrapped


def make_sentencepiece_like() -> PreTrainedTokenizerFast:
    return _metaspace_tokenizer(split=True)


def make_merging() -> PreTrainedTokenizerFast:
    """Merges like 'ISTANT:▁Red' cross the prompt/reply boundary: labels cannot line up."""
    return _metaspace_tokenizer(split=False)


def make_byte_level() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<|endoftext|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", bos_token="<|endoftext|>")
    wrapped.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return wrapped


@pytest.fixture(scope="session")
def sp_tokenizer():
    return make_sentencepiece_like()


@pytest.fixture(scope="session")
def byte_tokenizer():
    return make_byte_level()


@pytest.fixture(scope="session")
def merging_tokenizer():
    return make_merging()


def write_tiny_dataset(folder: Path, num_images: int = 16, image_size: int = 32) -> Path:
    """Solid-colour images with LLaVA records: captions (stage 1) and two-turn Q&A + text-only (stage 2)."""
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 30)}
    folder.mkdir(parents=True, exist_ok=True)
    pretrain, finetune = [], []
    for index in range(num_images):
        name = list(colours)[index % len(colours)]
        pixels = np.zeros((image_size, image_size, 3), np.uint8)
        pixels[:] = colours[name]
        Image.fromarray(pixels).save(folder / f"img{index}.png")
        pretrain.append(
            {"id": f"p{index}", "image": f"img{index}.png", "conversations": [
                {"from": "human", "value": "<image>\nDescribe the photo briefly."},
                {"from": "gpt", "value": f"A {name} square."}]}
        )
        finetune.append(
            {"id": f"f{index}", "image": f"img{index}.png", "conversations": [
                {"from": "human", "value": "What is in the image?\n<image>"},
                {"from": "gpt", "value": f"A {name} square."},
                {"from": "human", "value": "How many circles are there?"},
                {"from": "gpt", "value": "no"}]}
        )
    for index in range(num_images // 4):
        finetune.append(
            {"id": f"t{index}", "conversations": [
                {"from": "human", "value": "Describe the photo briefly."},
                {"from": "gpt", "value": "The cat sits on the mat."}]}
        )
    (folder / "pretrain.json").write_text(json.dumps(pretrain))
    (folder / "finetune.json").write_text(json.dumps(finetune))
    return folder


@pytest.fixture(scope="session")
def tiny_parts(tmp_path_factory):
    """`{"llm", "tower", "data"}`: a tiny random Llama + tokenizer, a tiny DINOv2 + processor, data."""
    from tests.model.tiny import save_tiny_llm, save_tiny_tower

    root = tmp_path_factory.mktemp("tiny_parts")
    return {
        "llm": save_tiny_llm(root / "llm"),
        "tower": save_tiny_tower(root / "tower", "dinov2"),
        "data": write_tiny_dataset(root / "data"),
    }
