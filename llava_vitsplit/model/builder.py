"""LLaVA's loading API: ``load_pretrained_model(model_path, model_base, model_name, ...)``.

LLaVA picks its loading path from substrings of the folder name ("lora", "llava"); here the files
decide:

* ``adapter_config.json`` -> a LoRA checkpoint (PEFT; the projector rides along as a module to
  save): the base is ``model_base`` when that is a full model folder, else it is rebuilt from the
  LLM ``model_base`` and the tower recorded in the LoRA folder's ``config.json``; then the LoRA
  weights are merged;
* ``config.json`` with ``model_type`` ``llava_vitsplit`` -> ours (or, with only a projector file
  beside it, a stage-1 output); ``llava`` -> a ``llava-hf`` folder; ``llava_llama``/
  ``llava_mistral`` -> an original LLaVA checkpoint (imported on the fly), or with only
  ``mm_projector.bin``, a LLaVA stage-1 output;
* ``mm_projector.safetensors``/``mm_projector.bin`` alone -> a stage-1 projector.

Projector-only (stage-1) checkpoints take the LLM from ``model_base``, as in LLaVA.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from transformers import AutoConfig

from llava_vitsplit.constants import PROJECTOR_MODULE

from .image_processing import output_size
from .import_llava import LLAVA_MODEL_TYPES, import_llava
from .import_projector import import_projector
from .modeling import LlavaViTSplitForConditionalGeneration
from .processing import LlavaViTSplitProcessor
from .projector_io import LLAVA_PROJECTOR_WEIGHTS, PROJECTOR_WEIGHTS
from .runtime import choose_attn_implementation, default_dtype, resolve_device

logger = logging.getLogger(__name__)

_MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


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
    model_path = Path(model_path)
    if not model_path.is_dir():
        raise FileNotFoundError(f"model_path {model_path} is not a folder")
    target = resolve_device(device)
    dtype = torch_dtype or default_dtype(target)
    if use_flash_attn:
        attn_implementation = "flash_attention_2"
    attention = attn_implementation or choose_attn_implementation(target, dtype)
    quantization = _quantization(load_8bit, load_4bit, dtype)

    kind = checkpoint_kind(model_path)
    logger.info("%s: %s checkpoint%s", model_path, kind, f" over base {model_base}" if model_base else "")
    if quantization is not None and kind not in ("llava_vitsplit", "llava-hf"):
        raise ValueError(
            f"8/4-bit loading needs a llava_vitsplit or llava-hf folder; {model_path} is a {kind} checkpoint: "
            "convert it first (llava-vitsplit convert)"
        )
    if kind in ("lora", "projector") and model_base is None:
        raise ValueError(f"{model_path} is a {kind} checkpoint: pass model_base (the LLM it was trained on)")
    if kind not in ("lora", "projector") and model_base is not None:
        raise ValueError(f"model_base is only used with LoRA or projector-only checkpoints; {model_path} is a full model")

    if kind == "lora":
        model, processor = _load_lora(model_path, Path(model_base), dtype, attention, vision_tower)
    elif kind == "projector":
        model, processor = import_projector(model_path, model_base, vision_tower, torch_dtype=dtype)
    elif kind == "llava":
        model, processor = import_llava(model_path, vision_tower=vision_tower, dtype=dtype)
    else:
        loading = dict(dtype=dtype, attn_implementation=attention)
        if quantization is not None:
            loading["quantization_config"] = quantization
        if target.type == "cuda" and device_map is not None:
            loading["device_map"] = device_map  # as LLaVA: "auto" spreads a large model over the GPUs
        model = LlavaViTSplitForConditionalGeneration.from_pretrained(model_path, **loading)
        processor = LlavaViTSplitProcessor.from_pretrained(model_path)
    if quantization is None and not hasattr(model, "hf_device_map"):  # device_map placed it already
        model.to(device=target, dtype=dtype)
    return model.eval(), processor


def checkpoint_kind(folder: Path) -> str:
    """``lora``, ``llava_vitsplit``, ``llava-hf``, ``llava`` (original LLaVA) or ``projector`` (stage 1)."""
    if (folder / "adapter_config.json").is_file():
        return "lora"
    has_projector = any((folder / name).is_file() for name in (PROJECTOR_WEIGHTS, LLAVA_PROJECTOR_WEIGHTS))
    has_weights = any((folder / name).is_file() for name in _MODEL_FILES)
    config_file = folder / "config.json"
    if has_projector and not has_weights:
        return "projector"
    if config_file.is_file():
        model_type = json.loads(config_file.read_text()).get("model_type")
        kinds = {LlavaViTSplitForConditionalGeneration.config_class.model_type: "llava_vitsplit", "llava": "llava-hf"}
        kind = kinds.get(model_type, "llava" if model_type in LLAVA_MODEL_TYPES else None)
        if kind is None:
            raise ValueError(f"{config_file}: model_type {model_type!r} is not a LLaVA model")
        return kind
    raise FileNotFoundError(f"{folder} holds no model: no config.json, adapter_config.json or projector weights")


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


def _load_lora(model_path: Path, model_base: Path, dtype: torch.dtype, attention: str, vision_tower):
    """The base model with the LoRA weights (and the projector saved beside them) merged in."""
    from peft import PeftModel

    if _is_full_llava_model(model_base):
        model, processor = load_model(model_base, device="cpu", torch_dtype=dtype, attn_implementation=attention)
    else:
        model, processor = _model_from_llm_base(model_path, model_base, dtype, attention, vision_tower)
    model = PeftModel.from_pretrained(model, model_path).merge_and_unload()
    logger.info("merged the LoRA weights of %s into %s", model_path, model_base)
    return model, processor


def _is_full_llava_model(folder: Path) -> bool:
    config_file = folder / "config.json"
    if not config_file.is_file() or not any((folder / name).is_file() for name in _MODEL_FILES):
        return False
    model_type = json.loads(config_file.read_text()).get("model_type")
    return model_type in (LlavaViTSplitForConditionalGeneration.config_class.model_type, "llava", *LLAVA_MODEL_TYPES)


def _model_from_llm_base(model_path: Path, llm: Path, dtype, attention, vision_tower):
    """Rebuild the LoRA run's base around a plain LLM from the LoRA folder's config.json and processor."""
    if not (model_path / "config.json").is_file():
        raise FileNotFoundError(
            f"{model_path}: a LoRA checkpoint over a plain LLM ({llm}) needs the model's config.json beside the adapter"
        )
    config = AutoConfig.from_pretrained(model_path)
    processor = LlavaViTSplitProcessor.from_pretrained(model_path)
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
        vision_tower or config.mm_vision_tower,
        projector_type=config.projector_type,
        torch_dtype=dtype,
        attn_implementation=attention,
        **kwargs,
    )
    return model, processor
