"""Import an original LLaVA-1.5 checkpoint (haotian-liu layout) as a LlavaViTSplit model.

LLaVA saves ``LlavaLlamaForCausalLM``: the LLM's own keys (``model.layers.*``, ``lm_head``), the
projector under ``model.mm_projector.*`` and, usually, the CLIP tower under
``model.vision_tower.vision_tower.*``. Its ``config.json`` is the LLM's config plus ``mm_*`` fields;
the tower itself is named by a Hub id there, so its config and image processor come from a local
tower folder (``vision_tower=``, or ``mm_vision_tower`` when that is a local folder). The tokenizer
gets ``<image>`` as a special token (LLaVA splices images in at a sentinel id instead).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from accelerate import init_empty_weights
from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer, GenerationConfig

from llava_vitsplit.constants import PROJECTOR_TYPES
from llava_vitsplit.split import adapt_backbone, load_backbone, vision_family
from llava_vitsplit.state_dicts import load_state_dict_strictly

from .checkpoint_files import read_json, read_state_dict
from .checkpoint_format import LLAVA_MODEL_TYPES
from .configuration import LlavaViTSplitConfig, default_vitsplit_fields
from .modeling import LlavaViTSplitForConditionalGeneration
from .processing import LlavaViTSplitProcessor
from .projector_io import KEY_PREFIX, projector_state
from .tokenizer import grow_embeddings, prepare_tokenizer

logger = logging.getLogger(__name__)

# LLaVA's additions to the LLM config (besides every mm_* field), dropped from the text config.
_LLAVA_ONLY_FIELDS = {
    "architectures", "model_type", "_name_or_path", "transformers_version", "image_aspect_ratio",
    "image_grid_pinpoints", "tokenizer_model_max_length", "tokenizer_padding_side", "tune_mm_mlp_adapter",
    "freeze_mm_mlp_adapter", "use_mm_proj", "unfreeze_mm_vision_tower", "mm_patch_merge_type", "torch_dtype",
}  # fmt: skip
_TOWER_PREFIX = "model.vision_tower.vision_tower."


def llava_projector_fields(llava_config: dict, vision_config, llm_width: int) -> dict:
    """Our projector fields for LLaVA's ``mm_*`` settings (MLP, linear, or the authors' ViT-Split)."""
    kind = llava_config.get("mm_projector_type", "linear")  # LLaVA's own default
    select = llava_config.get("mm_vision_select_feature", "patch")
    if select not in ("patch", "cls_patch"):
        raise ValueError(f"mm_vision_select_feature={select!r} is not supported (LLaVA knows 'patch' and 'cls_patch')")
    fields = {"vision_feature_select_strategy": "default" if select == "patch" else "full"}
    if kind in PROJECTOR_TYPES and kind != "vitsplit":
        layer = llava_config.get("mm_vision_select_layer", -2)
        return {**fields, "projector_type": kind, "vision_feature_layer": layer}
    if kind.lower() != "vitsplit":
        raise ValueError(f"mm_projector_type={kind!r} is not supported; supported: {', '.join(PROJECTOR_TYPES)}")
    task_layers = llava_config.get("mm_tuned_layers_num", 1)
    prior_hidden_states = llava_config.get("mm_frozen_select_layer", [-2])
    if not task_layers or not prior_hidden_states:
        raise ValueError(
            "only the authors' full ViT-Split projector (mm_tuned_layers_num > 0 and a non-empty "
            f"mm_frozen_select_layer) is supported, got {task_layers} and {prior_hidden_states}"
        )
    num_layers = vision_config.num_hidden_layers
    # hs[i] (negative i counts from the end of hs[0..L]) is the output of block L + i (0-based).
    vitsplit = default_vitsplit_fields(
        "official",
        num_layers=num_layers,
        hidden_size=vision_config.hidden_size,
        llm_width=llm_width,
        family=vision_family(vision_config),
        num_task_layers=task_layers,
        num_prior_layers=len(prior_hidden_states),
        prior_layer_ids=[i % (num_layers + 1) - 1 for i in prior_hidden_states],
    )
    return {
        "vision_feature_select_strategy": "default",
        "projector_type": "vitsplit",
        "vitsplit_variant": "official",
        "vitsplit": vitsplit,
    }


def resolve_vision_tower(llava_config: dict, vision_tower: str | os.PathLike | None, source: Path) -> Path:
    named = vision_tower or llava_config.get("mm_vision_tower") or llava_config.get("vision_tower")
    if named is None or not (Path(named) / "config.json").is_file():
        raise FileNotFoundError(
            f"{source}: the vision tower {named!r} is not a local model folder; pass the folder of "
            "that tower (config.json, preprocessor_config.json) as vision_tower / --vision-tower"
        )
    return Path(named)


def import_llava(
    folder: str | os.PathLike,
    *,
    vision_tower: str | os.PathLike | None = None,
    dtype: torch.dtype | None = None,
    llava_config: dict | None = None,
) -> tuple[LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor]:
    """``(model, processor)`` from an original LLaVA checkpoint folder; every tensor is checked.
    ``llava_config`` is its ``config.json`` when the caller has read it already."""
    folder = Path(folder)
    if llava_config is None:
        llava_config = read_json(folder / "config.json") or {}
    llm_type = LLAVA_MODEL_TYPES.get(llava_config.get("model_type"))
    if llm_type is None:
        raise ValueError(f"{folder}: model_type {llava_config.get('model_type')!r} is not an original LLaVA checkpoint")
    if llava_config.get("mm_use_im_start_end") or llava_config.get("mm_use_im_patch_token"):
        raise ValueError(f"{folder}: checkpoints with image start/end or patch tokens are not supported")
    if llava_config.get("mm_patch_merge_type", "flat") != "flat" or llava_config.get("image_aspect_ratio") == "anyres":
        raise ValueError(f"{folder}: LLaVA-NeXT any-resolution checkpoints are not supported")

    text_config = AutoConfig.for_model(
        llm_type,
        **{k: v for k, v in llava_config.items() if k not in _LLAVA_ONLY_FIELDS and not k.startswith("mm_")},
    )
    tower_folder = resolve_vision_tower(llava_config, vision_tower, folder)
    vision_config = AutoConfig.from_pretrained(tower_folder)
    vision_config = getattr(vision_config, "vision_config", vision_config)  # a full CLIP checkpoint
    checkpoint = read_state_dict(folder)
    dtype = dtype or next(iter(checkpoint.values())).dtype
    tokenizer = AutoTokenizer.from_pretrained(folder)
    image_token_id = prepare_tokenizer(tokenizer)

    config = LlavaViTSplitConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_id=image_token_id,
        mm_vision_tower=str(tower_folder.resolve()),
        **llava_projector_fields(llava_config, vision_config, text_config.hidden_size),
    )
    with init_empty_weights():
        model = LlavaViTSplitForConditionalGeneration(config)
    state = _our_keys(checkpoint, config.projector_type)
    if not any(key.startswith("model.vision_tower.") for key in state):
        logger.info("%s holds no vision tower weights: reading them from %s", folder, tower_folder)
        tower_state = load_backbone(tower_folder).state_dict()
        state.update({"model.vision_tower." + key: tensor for key, tensor in tower_state.items()})
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    load_state_dict_strictly(model, state, source=f"LLaVA checkpoint {folder}", ignore=tied, assign=True)
    model.tie_weights()
    model.to(dtype)
    model.config.dtype = dtype

    grow_embeddings(model, tokenizer)

    adapter = adapt_backbone(model.model.vision_tower)
    processor = LlavaViTSplitProcessor(
        image_processor=AutoImageProcessor.from_pretrained(tower_folder),
        tokenizer=tokenizer,
        patch_size=adapter.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=adapter.num_prefix_tokens,
        image_aspect_ratio=llava_config.get("image_aspect_ratio", "square"),  # LLaVA's default is 'square'
    )
    model.config.image_seq_length = processor.image_seq_length
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), processor


def _our_keys(checkpoint: dict[str, torch.Tensor], projector_type: str) -> dict[str, torch.Tensor]:
    """LLaVA's key layout -> ours (tower, projector, LLM body, LM head)."""
    projector = {key: tensor for key, tensor in checkpoint.items() if "mm_projector." in key}
    state = {
        KEY_PREFIX + key: tensor for key, tensor in projector_state(projector, projector_type).items()
    }
    for key, tensor in checkpoint.items():
        if key in projector:
            continue
        if key.startswith(_TOWER_PREFIX):
            tower_key = key[len(_TOWER_PREFIX) :].removeprefix("vision_model.")
            if tower_key != "embeddings.position_ids":  # a buffer older transformers saved
                state["model.vision_tower." + tower_key] = tensor
        elif key.startswith("model."):
            state["model.language_model." + key[len("model.") :]] = tensor
        else:
            state[key] = tensor  # lm_head.weight; anything else is reported as unexpected
    return state
