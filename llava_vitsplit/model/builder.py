"""LLaVA's loading API: ``load_pretrained_model(model_path, model_base, model_name, ...)``.

LLaVA picks its loading path from substrings of the folder name ("lora", "llava"); here the files
decide:

* ``adapter_config.json`` -> a LoRA checkpoint: the base is loaded (a model folder of any kind
  below, or a plain LLM plus the tower recorded in the LoRA folder's ``config.json``), the
  non-LoRA weights (``non_lora_trainables.*``) go in, and the LoRA weights are merged;
* ``config.json`` with ``model_type`` ``llava_vitsplit`` -> ours; ``llava`` -> a ``llava-hf``
  folder; ``llava_llama``/``llava_mistral`` -> an original LLaVA checkpoint (imported on the fly),
  or with ``model_base`` and only ``mm_projector.bin``, a LLaVA stage-1 output;
* ``mm_projector.safetensors``/``mm_projector.bin`` alone -> a stage-1 projector over ``model_base``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from transformers import AutoConfig

from .checkpoint_files import check_state_dict, read_tensor_file
from .import_llava import LLAVA_MODEL_TYPES, import_llava
from .import_llava_hf import import_llava_hf
from .import_projector import import_projector
from .modeling import LlavaViTSplitForConditionalGeneration
from .processing import LlavaViTSplitProcessor
from .projector_io import LLAVA_PROJECTOR_WEIGHTS, PROJECTOR_WEIGHTS
from .runtime import choose_attn_implementation, default_dtype, resolve_device

logger = logging.getLogger(__name__)

NON_LORA_FILES = ("non_lora_trainables.safetensors", "non_lora_trainables.bin")
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
    if kind in ("lora", "projector", "llava-stage1") and model_base is None:
        raise ValueError(f"{model_path} is a {kind} checkpoint: pass model_base (the model it was trained on)")
    if kind not in ("lora", "projector", "llava-stage1") and model_base is not None:
        raise ValueError(f"model_base is only used with LoRA or projector-only checkpoints; {model_path} is a full model")

    if kind == "lora":
        model, processor = _load_lora(model_path, Path(model_base), dtype, attention, vision_tower)
    elif kind in ("projector", "llava-stage1"):
        model, processor = import_projector(model_path, model_base, vision_tower, torch_dtype=dtype)
    elif kind == "llava":
        model, processor = import_llava(model_path, vision_tower=vision_tower, dtype=dtype)
    else:
        loading = dict(dtype=dtype, attn_implementation=attention)
        if quantization is not None:
            loading["quantization_config"] = quantization
        if target.type == "cuda" and device_map is not None:
            loading["device_map"] = device_map if device_map != "auto" else {"": str(target)}
        model = LlavaViTSplitForConditionalGeneration.from_pretrained(model_path, **loading)
        processor = LlavaViTSplitProcessor.from_pretrained(model_path)
    if quantization is None and not hasattr(model, "hf_device_map"):  # device_map placed it already
        model.to(device=target, dtype=dtype)
    return model.eval(), processor


def checkpoint_kind(folder: Path) -> str:
    """``lora``, ``llava_vitsplit``, ``llava-hf``, ``llava``, ``llava-stage1`` or ``projector``."""
    if (folder / "adapter_config.json").is_file():
        return "lora"
    has_projector = any((folder / name).is_file() for name in (PROJECTOR_WEIGHTS, LLAVA_PROJECTOR_WEIGHTS))
    config_file = folder / "config.json"
    if config_file.is_file():
        model_type = json.loads(config_file.read_text()).get("model_type")
        if model_type == LlavaViTSplitForConditionalGeneration.config_class.model_type:
            return "llava_vitsplit"
        if model_type == "llava":
            return "llava-hf"
        if model_type in LLAVA_MODEL_TYPES:
            has_weights = any((folder / name).is_file() for name in _MODEL_FILES)
            return "llava" if has_weights or not has_projector else "llava-stage1"
        raise ValueError(f"{config_file}: model_type {model_type!r} is not a LLaVA model")
    if has_projector:
        return "projector"
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
    skip = ["vision_tower", "multi_modal_projector", "lm_head"]
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
    """Base model + non-LoRA trainables + merged LoRA weights."""
    from peft import PeftModel

    base_kind = checkpoint_kind(model_base) if (model_base / "config.json").is_file() else None
    if base_kind in ("llava_vitsplit", "llava-hf", "llava"):
        model, processor = load_model(model_base, device="cpu", torch_dtype=dtype, attn_implementation=attention)
    else:
        model, processor = _model_from_llm_base(model_path, model_base, dtype, attention, vision_tower)
    extra = _non_lora_trainables(model_path)
    if extra:
        expected = {key: tensor.shape for key, tensor in model.state_dict().items()}
        check_state_dict(
            expected, extra, source=f"non-LoRA weights in {model_path}", ignore=set(expected) - set(extra)
        )
        model.load_state_dict(extra, strict=False)
    model = PeftModel.from_pretrained(model, model_path).merge_and_unload()
    if any((model_path / name).is_file() for name in ("tokenizer_config.json", "processor_config.json")):
        processor = LlavaViTSplitProcessor.from_pretrained(model_path)
    logger.info("merged the LoRA weights of %s into %s", model_path, model_base)
    return model, processor


def _model_from_llm_base(model_path: Path, llm: Path, dtype, attention, vision_tower):
    """Rebuild the model around a plain LLM from the LoRA folder's own config.json."""
    config_file = model_path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(
            f"{model_path}: a LoRA checkpoint over a plain LLM ({llm}) needs the model's config.json beside the adapter"
        )
    config = AutoConfig.from_pretrained(model_path)
    tower = vision_tower or config.mm_vision_tower
    kwargs = dict(
        vision_feature_layer=config.vision_feature_layer,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
    )
    if config.projector_type == "vitsplit":
        kwargs.update(vitsplit_preset=config.vitsplit_variant, vitsplit_overrides=config.vitsplit)
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        llm, tower, projector_type=config.projector_type, torch_dtype=dtype, attn_implementation=attention, **kwargs
    )
    return model, processor


def _non_lora_trainables(model_path: Path) -> dict[str, torch.Tensor]:
    """The projector (and anything else trained outside LoRA), under our model's key names."""
    for name in NON_LORA_FILES:
        if (model_path / name).is_file():
            raw = read_tensor_file(model_path / name)
            return {_strip_peft_prefix(key): tensor for key, tensor in raw.items()}
    return {}


def _strip_peft_prefix(key: str) -> str:
    return key.removeprefix("base_model.model.")
