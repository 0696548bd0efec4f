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


TEXT_CONFIG = dict(
    vocab_size=64, hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
)
IMAGE_TOKEN_ID = 63
GRID_TOKENS = (TOWER_SIZE // TINY_TOWER["patch_size"]) ** 2


def tiny_model(family: str = "dinov2", **config_fields):
    """A random LlavaViTSplit model straight from a config (no folders), in eval mode."""
    from llava_vitsplit.model import LlavaViTSplitConfig, LlavaViTSplitForConditionalGeneration

    tower, _ = tiny_tower(family)
    config = LlavaViTSplitConfig(
        vision_config=tower.config,
        text_config=LlamaConfig(**TEXT_CONFIG),
        image_token_id=IMAGE_TOKEN_ID,
        image_seq_length=GRID_TOKENS,
        **config_fields,
    )
    return LlavaViTSplitForConditionalGeneration(config).eval()


def prompt_ids(images_per_row: list[int], text_tokens: int = 5, image_tokens: int = GRID_TOKENS) -> torch.Tensor:
    """Rows of ``[bos, <image> x tokens per image, text...]`` (same length when rows hold as many images)."""
    rows = []
    for count in images_per_row:
        rows.append([1] + [IMAGE_TOKEN_ID] * image_tokens * count + list(range(3, 3 + text_tokens)))
    return torch.tensor(rows)


def save_tiny_llava_checkpoint(
    folder: Path, tower_dir: Path, *, include_tower: bool = True, safetensors_shards: bool = False, **llava_fields
) -> dict[str, torch.Tensor]:
    """An original LLaVA-1.5 checkpoint (LlavaLlamaForCausalLM layout, MLP projector) over a CLIP tower
    folder; returns the tensors written."""
    import json

    from safetensors.torch import save_file
    from transformers import CLIPVisionModel

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer()
    llm_config = LlamaConfig(**{**TEXT_CONFIG, "vocab_size": len(tokenizer)})
    state = dict(LlamaForCausalLM(llm_config).state_dict())
    tower = CLIPVisionModel.from_pretrained(tower_dir)
    width, llm_width = tower.config.hidden_size, llm_config.hidden_size
    state.update({
        "model.mm_projector.0.weight": torch.randn(llm_width, width) * 0.1,
        "model.mm_projector.0.bias": torch.randn(llm_width) * 0.1,
        "model.mm_projector.2.weight": torch.randn(llm_width, llm_width) * 0.1,
        "model.mm_projector.2.bias": torch.randn(llm_width) * 0.1,
    })  # fmt: skip
    if include_tower:  # transformers 4.x CLIPVisionModel keys, under LLaVA's CLIPVisionTower
        state.update({f"model.vision_tower.vision_tower.vision_model.{k}": v for k, v in tower.state_dict().items()})
    state = {key: value.contiguous() for key, value in state.items()}
    if safetensors_shards:
        keys = sorted(state)
        halves = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
        for name, part in halves.items():
            save_file({k: state[k] for k in part}, folder / name, metadata={"format": "pt"})
        index = {"weight_map": {k: name for name, part in halves.items() for k in part}}
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    else:
        torch.save(state, folder / "pytorch_model.bin")
    config = llm_config.to_dict()
    config.update(dict(
        model_type="llava_llama",
        architectures=["LlavaLlamaForCausalLM"],
        mm_vision_tower="openai/clip-vit-large-patch14-336",
        mm_projector_type="mlp2x_gelu",
        mm_hidden_size=width,
        mm_vision_select_layer=-2,
        mm_vision_select_feature="patch",
        image_aspect_ratio="pad",
        mm_use_im_start_end=False,
        mm_use_im_patch_token=False,
        tune_mm_mlp_adapter=False,
    ), **llava_fields)
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer.save_pretrained(folder)
    return state


def save_tiny_llava_hf(folder: Path) -> Path:
    """A folder written by transformers' own LlavaForConditionalGeneration and LlavaProcessor (CLIP tower)."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    from llava_vitsplit.model.tokenizer import prepare_tokenizer

    tokenizer = tiny_tokenizer()
    image_token_id = prepare_tokenizer(tokenizer)
    tower, image_processor = tiny_tower("clip")
    config = LlavaConfig(
        vision_config=tower.config,
        text_config=LlamaConfig(**{**TEXT_CONFIG, "vocab_size": len(tokenizer)}),
        image_token_id=image_token_id,
        image_seq_length=GRID_TOKENS,
    )
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=TINY_TOWER["patch_size"],
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    processor.save_pretrained(folder)
    return folder
