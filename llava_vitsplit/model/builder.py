"""LLaVA's loading API: ``load_pretrained_model(model_path, model_base, model_name, ...)``.

The checkpoint's files decide how it loads: ``checkpoint_format.detect_checkpoint`` names the
format once (ours, llava-hf, original LLaVA, a stage-1 projector, a LoRA run) and reads its
``config.json`` once; ``_READERS`` holds one reader per format.

Projector-only (stage-1) checkpoints take the LLM from ``model_base``, as in LLaVA.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from llava_vitsplit.constants import PROJECTOR_MODULE

from .checkpoint_format import Checkpoint, CheckpointFormat, detect_checkpoint, is_full_model
from .configuration import LlavaViTSplitConfig
from .image_processing import output_size
from .import_llava import import_llava
from .import_projector import import_projector
from .modeling import LlavaViTSplitForConditionalGeneration
from .processing import LlavaViTSplitProcessor
from .runtime import choose_attn_implementation, default_dtype, resolve_device

logger = logging.getLogger(__name__)

def load_pretrained_model(
    model_path: str | os.PathLike,
    model_base: str | os.PathLike | None = None,
    model_name: str | None = None,
    load_8bit: bool = False,
    load_4bit: bool = False,
    device_map: str | dict | None = "auto",
    device: str = "cuda",
    use_flash_attn: bool = False,
    **kwargs,
):
    """``(tokenizer, model, image_processor, context_len)``, as LLaVA's ``load_pretrained_model``.

    ``model_name`` is accepted for compatibility and only logged: the checkpoint's files decide
    how it loads. ``device="cuda"`` without a GPU falls back to the CPU. Extra keyword arguments:
    ``torch_dtype`` (default bf16/fp16 on GPU, fp32 on CPU), ``attn_implementation``,
    ``vision_tower`` (local tower folder for original LLaVA checkpoints).
    """
    model, processor = load_model(
        model_path,
        model_base,
        load_8bit=load_8bit,
        load_4bit=load_4bit,
        device_map=device_map,
        device=device,
        use_flash_attn=use_flash_attn,
        **kwargs,
    )
    if model_name:
        logger.info("loading %s (model_name %r is not used to choose the loading path)", model_path, model_name)
    context_len = getattr(model.config.text_config, "max_position_embeddings", None) or 2048
    return processor.tokenizer, model, processor.image_processor, context_len


def load_model(
    model_path: str | os.PathLike,
    model_base: str | os.PathLike | None = None,
    *,
    load_8bit: bool = False,
    load_4bit: bool = False,
    device_map: str | dict | None = "auto",
    device: str = "cuda",
    use_flash_attn: bool = False,
    torch_dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
    vision_tower: str | os.PathLike | None = None,
) -> tuple[LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor]:
    """``(model, processor)`` for any checkpoint ``load_pretrained_model`` accepts, in eval mode."""
    checkpoint = detect_checkpoint(model_path)
    target = resolve_device(device)
    dtype = torch_dtype or default_dtype(target)
    if use_flash_attn:
        attn_implementation = "flash_attention_2"
    options = _LoadOptions(
        dtype=dtype,
        attention=attn_implementation or choose_attn_implementation(target, dtype),
        quantization=_quantization(load_8bit, load_4bit, dtype),
        device_map=device_map if target.type == "cuda" else None,
        vision_tower=vision_tower,
    )
    _check_request(checkpoint, model_base, options)
    logger.info("%s: %s checkpoint%s", checkpoint.folder, checkpoint.format, f" over base {model_base}" if model_base else "")
    model, processor = _READERS[checkpoint.format](checkpoint, model_base, options)
    if options.quantization is None and not hasattr(model, "hf_device_map"):  # device_map placed it already
        model.to(device=target, dtype=dtype)
    return model.eval(), processor


def checkpoint_kind(folder: str | os.PathLike) -> str:
    """The ``CheckpointFormat`` of ``folder``: ``lora``, ``llava_vitsplit``, ``llava-hf``, ``llava`` or ``projector``."""
    return detect_checkpoint(folder).format


@dataclass(frozen=True)
class _LoadOptions:
    dtype: torch.dtype
    attention: str
    quantization: object | None
    device_map: str | dict | None
    vision_tower: str | os.PathLike | None


def _check_request(checkpoint: Checkpoint, model_base, options: _LoadOptions) -> None:
    kind, folder = checkpoint.format, checkpoint.folder
    if options.quantization is not None and kind not in (CheckpointFormat.OURS, CheckpointFormat.LLAVA_HF):
        raise ValueError(
            f"8/4-bit loading needs a llava_vitsplit or llava-hf folder; {folder} is a {kind} checkpoint: "
            "convert it first (llava-vitsplit convert)"
        )
    if kind in CheckpointFormat.OVER_A_BASE and model_base is None:
        raise ValueError(f"{folder} is a {kind} checkpoint: pass model_base (the LLM it was trained on)")
    if kind not in CheckpointFormat.OVER_A_BASE and model_base is not None:
        raise ValueError(f"model_base is only used with LoRA or projector-only checkpoints; {folder} is a full model")


# One reader per format: (checkpoint, model_base, options) -> (model, processor).


def _read_full_folder(checkpoint: Checkpoint, model_base, options: _LoadOptions):
    """Ours or llava-hf: transformers' own loading (strict, see ``from_pretrained``)."""
    config = LlavaViTSplitConfig.from_dict(LlavaViTSplitConfig.ours_from_saved(checkpoint.config))  # read once
    loading = dict(config=config, dtype=options.dtype, attn_implementation=options.attention)
    if options.quantization is not None:
        loading["quantization_config"] = options.quantization
    if options.device_map is not None:
        loading["device_map"] = options.device_map  # as LLaVA: "auto" spreads a large model over the GPUs
    model = LlavaViTSplitForConditionalGeneration.from_pretrained(checkpoint.folder, **loading)
    return model, LlavaViTSplitProcessor.from_pretrained(checkpoint.folder)


def _read_original_llava(checkpoint: Checkpoint, model_base, options: _LoadOptions):
    return import_llava(
        checkpoint.folder, vision_tower=options.vision_tower, dtype=options.dtype, llava_config=checkpoint.config
    )


def _read_projector(checkpoint: Checkpoint, model_base, options: _LoadOptions):
    return import_projector(checkpoint.folder, model_base, options.vision_tower, torch_dtype=options.dtype)


def _read_lora(checkpoint: Checkpoint, model_base, options: _LoadOptions):
    """The base model with the LoRA weights (and the projector saved beside them) merged in: the base
    is ``model_base`` when that is a whole model, else it is rebuilt around the LLM ``model_base``."""
    from peft import PeftModel

    base = Path(model_base)
    if is_full_model(base):
        model, processor = load_model(base, device="cpu", torch_dtype=options.dtype, attn_implementation=options.attention)
    else:
        model, processor = _model_from_llm_base(checkpoint, base, options)
    model = PeftModel.from_pretrained(model, checkpoint.folder).merge_and_unload()
    logger.info("merged the LoRA weights of %s into %s", checkpoint.folder, base)
    return model, processor


_READERS = {
    CheckpointFormat.OURS: _read_full_folder,
    CheckpointFormat.LLAVA_HF: _read_full_folder,
    CheckpointFormat.LLAVA: _read_original_llava,
    CheckpointFormat.PROJECTOR: _read_projector,
    CheckpointFormat.LORA: _read_lora,
}


def _quantization(load_8bit: bool, load_4bit: bool, dtype: torch.dtype):
    if not (load_8bit or load_4bit):
        return None
    if load_8bit and load_4bit:
        raise ValueError("choose one of load_8bit and load_4bit")
    if not torch.cuda.is_available():
        raise ValueError("8/4-bit loading (bitsandbytes) needs a CUDA GPU")
    from transformers import BitsAndBytesConfig

    # The tower, projector and LM head stay in full precision, as LLaVA does.
    skip = ["vision_tower", PROJECTOR_MODULE, "lm_head"]
    if load_8bit:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=True,
        bnb_4bit_quant_type="nf4",
        llm_int8_skip_modules=skip,
    )


def _model_from_llm_base(checkpoint: Checkpoint, llm: Path, options: _LoadOptions):
    """Rebuild the LoRA run's base around a plain LLM from the LoRA folder's config.json and processor."""
    if checkpoint.config is None:
        raise FileNotFoundError(
            f"{checkpoint.folder}: a LoRA checkpoint over a plain LLM ({llm}) needs the model's config.json beside the adapter"
        )
    config = LlavaViTSplitConfig.from_dict(LlavaViTSplitConfig.ours_from_saved(checkpoint.config))
    processor = LlavaViTSplitProcessor.from_pretrained(checkpoint.folder)
    kwargs = dict(
        vision_feature_layer=config.vision_feature_layer,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        image_size=output_size(processor.image_processor)[0],
        image_aspect_ratio=processor.image_aspect_ratio,
    )
    if config.projector_type == "vitsplit":
        kwargs.update(vitsplit_preset=config.vitsplit_variant, vitsplit_overrides=config.vitsplit)
    model, _ = LlavaViTSplitForConditionalGeneration.from_parts(
        llm,
        options.vision_tower or config.mm_vision_tower,
        projector_type=config.projector_type,
        torch_dtype=options.dtype,
        attn_implementation=options.attention,
        **kwargs,
    )
    return model, processor
