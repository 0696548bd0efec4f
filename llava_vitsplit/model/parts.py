"""A fresh LLaVA-ViT-Split model from a local LLM folder and a local vision-tower folder (stage-1 start)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from transformers import AutoImageProcessor, AutoModelForCausalLM, AutoTokenizer

from llava_vitsplit.constants import PROJECTOR_TYPES
from llava_vitsplit.safe_files import check_weights_folder, named_pickle_errors
from llava_vitsplit.split import adapt_backbone, load_backbone, vision_family

from .configuration import (
    PRESET_VARIANTS,
    VARIANT_PRESETS,
    LlavaViTSplitConfig,
    default_vitsplit_fields,
)
from .image_processing import output_size, with_image_size
from .processing import LlavaViTSplitProcessor
from .projectors import build_projector
from .runtime import choose_attn_implementation
from .tokenizer import grow_embeddings, prepare_tokenizer

logger = logging.getLogger(__name__)


def build_from_parts(
    model_class,
    llm_path: str | os.PathLike,
    vision_tower_path: str | os.PathLike,
    *,
    projector_type: str,
    vitsplit_preset: str | None = None,
    vitsplit_overrides: dict | None = None,
    image_size: int | None = None,
    torch_dtype: torch.dtype | None = None,
    vision_feature_layer: int | list[int] = -2,
    vision_feature_select_strategy: str = "default",
    image_aspect_ratio: str = "pad",
    attn_implementation: str | None = None,
):
    """``(model, processor)``: the LLM and the tower with their pretrained weights, a new projector.

    * ``projector_type``: one of ``llava_vitsplit.constants.PROJECTOR_TYPES``.
    * ``vitsplit_preset``: ``"llava"`` (the paper's variant, default) or ``"llava-official"`` (the
      authors' release), or the variant names ``"paper"``/``"official"``; ``vitsplit_overrides``
      sets any ``ViTSplitConfig`` field (K_t, K_p, b, split point, ...) on top of it.
    * ``image_size``: square input size; by default the tower's image processor decides.
    * ``torch_dtype``: fp32 by default (training keeps fp32 master weights).

    ``<image>`` is added to the tokenizer as a special token and the embeddings grow to match; the
    task head of a ViT-Split projector starts as a copy of the tower's pretrained blocks.
    """
    llm_path, vision_tower_path = Path(llm_path), Path(vision_tower_path)
    for role, folder in (("LLM", llm_path), ("vision tower", vision_tower_path)):
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{role} folder {folder} has no config.json")
    variant = _variant(projector_type, vitsplit_preset, vitsplit_overrides)
    if projector_type == "vitsplit" and vision_feature_select_strategy != "default":
        raise ValueError("a ViT-Split projector returns patch tokens only: use vision_feature_select_strategy='default'")
    dtype = torch_dtype or torch.float32
    attention = attn_implementation or choose_attn_implementation(torch.device("cpu"), dtype)

    tokenizer = AutoTokenizer.from_pretrained(llm_path)
    image_token_id = prepare_tokenizer(tokenizer)
    image_processor = _image_processor(vision_tower_path, image_size)  # fails early on a bad size
    tower, adapter, llm = _load_pretrained_parts(llm_path, vision_tower_path, image_size, dtype, attention)
    grow_embeddings(llm, tokenizer)
    processor = _processor(tokenizer, image_processor, adapter, vision_feature_select_strategy, image_aspect_ratio)
    config = LlavaViTSplitConfig(
        vision_config=tower.config,
        text_config=llm.config,
        image_token_id=image_token_id,
        image_seq_length=processor.image_seq_length,
        projector_type=projector_type,
        vision_feature_layer=vision_feature_layer,
        vision_feature_select_strategy=vision_feature_select_strategy,
        mm_vision_tower=str(vision_tower_path.resolve()),
        tie_word_embeddings=llm.config.tie_word_embeddings,
        **_projector_fields(projector_type, variant, vitsplit_overrides, adapter, llm.config),
    )
    config.dtype = dtype
    model = _assemble(model_class, config, tower, adapter, llm, tokenizer.pad_token_id, attention, dtype)
    logger.info(
        "built %s: %s + %s, projector %s (%.2fM parameters)",
        model_class.__name__,
        vision_tower_path.name,
        llm_path.name,
        projector_type if projector_type != "vitsplit" else f"vitsplit/{variant}",
        sum(p.numel() for p in model.model.multi_modal_projector.parameters()) / 1e6,
    )
    return model, processor


def _load_pretrained_parts(llm_path: Path, vision_tower_path: Path, image_size, dtype, attention: str):
    """``(tower, adapter, llm)`` with their pretrained weights; the tower frozen."""
    for folder in (llm_path, vision_tower_path):
        check_weights_folder(folder)
    with named_pickle_errors(vision_tower_path):
        tower = load_backbone(vision_tower_path, dtype=dtype, attn_implementation=attention)
    tower.requires_grad_(False).eval()
    adapter = adapt_backbone(tower)
    if image_size is not None and image_size < adapter.patch_size:
        raise ValueError(
            f"image_size {image_size} is smaller than one patch of the vision tower {vision_tower_path} "
            f"({adapter.patch_size}x{adapter.patch_size} pixels): give at least {adapter.patch_size}, "
            f"best a multiple of {adapter.patch_size}"
        )
    with named_pickle_errors(llm_path):
        llm = AutoModelForCausalLM.from_pretrained(llm_path, dtype=dtype, attn_implementation=attention)
    return tower, adapter, llm


def _processor(tokenizer, image_processor, adapter, select_strategy: str, aspect_ratio: str):
    return LlavaViTSplitProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=adapter.patch_size,
        vision_feature_select_strategy=select_strategy,
        num_additional_image_tokens=adapter.num_prefix_tokens,
        image_aspect_ratio=aspect_ratio,
        chat_template=tokenizer.chat_template,
    )


def _projector_fields(projector_type: str, variant: str | None, overrides: dict | None, adapter, llm_config) -> dict:
    """The config fields of a ViT-Split projector: the LLaVA preset of ``variant`` moved onto this tower."""
    if projector_type != "vitsplit":
        return {}
    vitsplit = default_vitsplit_fields(
        variant,
        num_layers=adapter.num_layers,
        hidden_size=adapter.hidden_size,
        llm_width=llm_config.hidden_size,
        family=vision_family(adapter.model.config),
        **(overrides or {}),
    )
    return {"vitsplit_variant": variant, "vitsplit": vitsplit}


def _assemble(model_class, config, tower, adapter, llm, pad_token_id: int, attention: str, dtype: torch.dtype):
    """Build the skeleton without allocating it, then put the loaded parts and a new projector in place."""
    with torch.device("meta"):
        model = model_class(config)
    inner = model.model
    inner.vision_tower = tower
    inner.vision_adapter = adapter
    inner.language_model = llm.model
    model.lm_head = llm.lm_head
    inner.multi_modal_projector = build_projector(config, adapter).to(dtype)
    model.generation_config = llm.generation_config
    model.generation_config.pad_token_id = pad_token_id
    model.config._attn_implementation = attention
    return model


def _variant(projector_type: str, preset: str | None, overrides: dict | None) -> str | None:
    if projector_type not in PROJECTOR_TYPES:
        raise ValueError(f"unknown projector_type {projector_type!r}; choose one of {', '.join(PROJECTOR_TYPES)}")
    if projector_type != "vitsplit":
        if preset is not None or overrides:
            raise ValueError(f"vitsplit_preset/vitsplit_overrides only apply to projector_type='vitsplit', not {projector_type!r}")
        return None
    preset = preset or VARIANT_PRESETS["paper"]
    if preset in VARIANT_PRESETS:
        return preset
    if preset not in PRESET_VARIANTS:
        raise ValueError(
            f"vitsplit_preset {preset!r} is not a LLaVA preset; choose one of {sorted(PRESET_VARIANTS)} "
            f"(or the variants {sorted(VARIANT_PRESETS)})"
        )
    return PRESET_VARIANTS[preset]


def _image_processor(vision_tower_path: Path, image_size: int | None):
    if not (vision_tower_path / "preprocessor_config.json").is_file():
        raise FileNotFoundError(
            f"vision tower folder {vision_tower_path} has no preprocessor_config.json (the tower's image processor)"
        )
    image_processor = AutoImageProcessor.from_pretrained(vision_tower_path)
    if image_size is not None:
        image_processor = with_image_size(image_processor, image_size)
    output_size(image_processor)  # fails early when the output size is not fixed
    return image_processor
