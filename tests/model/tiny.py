"""Tiny random parts for model tests: a BPE tokenizer trained here, a Llama LLM, vision towers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BitImageProcessor,
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    Dinov2Config,
    Dinov2Model,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
)

CORPUS = [
    "A chat between a curious user and an artificial intelligence assistant.",
    "USER: What is in the image? ASSISTANT: A red square on a blue background.",
    "How many circles are there? Two green circles and one yellow triangle.",
    "The cat sits on the mat. The dog runs in the park. Describe the photo briefly.",
    "Answer the question using a single word or phrase. yes no left right top bottom",
]
TOWER_SIZE = 32  # pixels; patch 8 -> a 4x4 grid = 16 image tokens
TINY_TOWER = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, patch_size=8, image_size=TOWER_SIZE)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=180, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tokenizer.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", model_max_length=256
    )


def save_tiny_llm(folder: Path, *, tie_word_embeddings: bool = False) -> Path:
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=tie_word_embeddings,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_tower(family: str):
    if family == "dinov2":
        return Dinov2Model(Dinov2Config(**TINY_TOWER, layerscale_value=0.5)), BitImageProcessor(
            size={"shortest_edge": TOWER_SIZE},
            crop_size={"height": TOWER_SIZE, "width": TOWER_SIZE},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        )
    if family == "clip":
        return CLIPVisionModel(CLIPVisionConfig(**TINY_TOWER, intermediate_size=64)), CLIPImageProcessor(
            size={"shortest_edge": TOWER_SIZE}, crop_size={"height": TOWER_SIZE, "width": TOWER_SIZE}
        )
    if family == "siglip":
        return SiglipVisionModel(SiglipVisionConfig(**TINY_TOWER, intermediate_size=64)), SiglipImageProcessor(
            size={"height": TOWER_SIZE, "width": TOWER_SIZE}
        )
    raise ValueError(family)


def save_tiny_tower(folder: Path, family: str) -> Path:
    tower, image_processor = tiny_tower(family)
    tower.save_pretrained(folder)
    image_processor.save_pretrained(folder)
    return folder


def random_image(width: int = 40, height: int = 24, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def assert_same_logits(a, b, atol=1e-5):
    torch.testing.assert_close(a, b, atol=atol, rtol=1e-4)
