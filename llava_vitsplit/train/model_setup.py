"""Building the model for a training stage and choosing what it trains.

Stage 1 (`--tune_mm_mlp_adapter`): only the projector (ViT-Split's task head included) learns.
Stage 2: projector + LLM, or LoRA adapters on the LLM + the projector. The vision tower is frozen
in every stage.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from llava_vitsplit.constants import PROJECTOR_MODULE
from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, projector_io

from .arguments import ModelArguments, TrainingArguments

logger = logging.getLogger(__name__)

BUILD_SPEC_FILE = "llava_vitsplit_build.json"
VITSPLIT_FLAGS = "--vitsplit_num_task_layers (K_t), --vitsplit_num_prior_layers (K_p), --vitsplit_prior_start_layer (b)"


@dataclass(frozen=True)
class BuildSpec:
    """How the untrained model was assembled; saved beside every output so a LoRA run can be merged."""

    llm_path: str
    vision_tower_path: str
    projector_type: str
    vitsplit_preset: str | None = None
    vitsplit_overrides: dict = field(default_factory=dict)
    image_size: int | None = None
    vision_feature_layer: int = -2

    @classmethod
    def from_arguments(cls, model_args: ModelArguments) -> BuildSpec:
        return cls(
            llm_path=str(Path(model_args.model_name_or_path).resolve()),
            vision_tower_path=str(Path(model_args.vision_tower).resolve()),
            projector_type=model_args.mm_projector_type,
            vitsplit_preset=model_args.vitsplit_preset,
            vitsplit_overrides=model_args.vitsplit_overrides(),
            image_size=model_args.image_size,
            vision_feature_layer=model_args.mm_vision_select_layer,
        )

    def save(self, folder: str | Path) -> None:
        (Path(folder) / BUILD_SPEC_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> BuildSpec:
        path = Path(folder) / BUILD_SPEC_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {folder} was not written by llava_vitsplit.train")
        return cls(**json.loads(path.read_text()))

    def build(self, torch_dtype: torch.dtype | None = None):
        """`(model, processor)`: the untrained model, from the LLM and tower folders."""
        for name, path in (("--model_name_or_path", self.llm_path), ("--vision_tower", self.vision_tower_path)):
            if not Path(path).is_dir():
                raise FileNotFoundError(f"{name} {path} is not a folder (a local Hugging Face model folder is needed)")
        return LlavaViTSplitForConditionalGeneration.from_parts(
            self.llm_path,
            self.vision_tower_path,
            projector_type=self.projector_type,
            vitsplit_preset=self.vitsplit_preset if self.projector_type == "vitsplit" else None,
            vitsplit_overrides=self.vitsplit_overrides or None,
            image_size=self.image_size,
            torch_dtype=torch_dtype,
            vision_feature_layer=self.vision_feature_layer,
        )


@contextlib.contextmanager
def _without_zero3_init():
    """Build the model whole on every rank; DeepSpeed partitions it when the engine starts.

    Under ZeRO-3 `from_pretrained` would otherwise create partitioned (empty) parameters, and
    ViT-Split's task head is a copy of tower blocks, which cannot be copied while partitioned.
    """
    from transformers.integrations import deepspeed as hf_deepspeed

    saved = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def build_model(model_args: ModelArguments, training_args: TrainingArguments):
    """The model for this stage (stage-1 projector loaded in stage 2), and its processor."""
    spec = BuildSpec.from_arguments(model_args)
    # With DeepSpeed, bf16 weights (it keeps fp32 master copies); otherwise fp32 weights and autocast.
    dtype = torch.bfloat16 if training_args.deepspeed and training_args.bf16 else None
    with _without_zero3_init():
        try:
            model, processor = spec.build(torch_dtype=dtype)
        except ValueError as error:
            if "ViTSplitConfig." not in str(error):
                raise
            raise ValueError(f"{error} (set with {VITSPLIT_FLAGS}, vision tower {spec.vision_tower_path})") from error
    if model_args.pretrain_mm_mlp_adapter:
        projector_io.load_projector(model, model_args.pretrain_mm_mlp_adapter)
    model.config.use_cache = False
    return model, processor, spec


def fit_model_max_length(training_args: TrainingArguments, text_config, llm_path: str) -> None:
    """Clamp `--model_max_length` to the LLM's position range, saying so: past
    `max_position_embeddings` the positions are ones the LLM never learnt."""
    positions = getattr(text_config, "max_position_embeddings", None)
    if positions is not None and training_args.model_max_length > positions:
        logger.warning(
            "--model_max_length %d is above the LLM's max_position_embeddings %d (%s): samples are cut at %d tokens",
            training_args.model_max_length, positions, llm_path, positions,
        )
        training_args.model_max_length = positions


def language_model_linear_names(model: nn.Module) -> list[str]:
    """Full names of the LLM's linear layers (LoRA targets); the tower, projector and LM head excluded."""
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and ".language_model." in f".{name}." and "lm_head" not in name
    ]
    if not names:
        raise ValueError("found no linear layer in model.language_model to put LoRA adapters on")
    return names


def configure_trainable(model: nn.Module, model_args: ModelArguments, training_args: TrainingArguments) -> nn.Module:
    """Set `requires_grad` for the stage; with `--lora_enable` return the PEFT-wrapped model."""
    projector = model.model.multi_modal_projector
    model.requires_grad_(False)
    train_projector = model_args.tune_mm_mlp_adapter or not training_args.freeze_mm_mlp_adapter
    train_llm = not (model_args.tune_mm_mlp_adapter or model_args.freeze_backbone)
    if training_args.lora_enable:
        from peft import LoraConfig, get_peft_model

        lora_config = LoraConfig(
            r=training_args.lora_r,
            lora_alpha=training_args.lora_alpha,
            lora_dropout=training_args.lora_dropout,
            bias=training_args.lora_bias,
            target_modules=language_model_linear_names(model),
            modules_to_save=[PROJECTOR_MODULE] if train_projector else None,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora_config)
    else:
        projector.requires_grad_(train_projector)
        model.model.language_model.requires_grad_(train_llm)
        model.lm_head.requires_grad_(train_llm)
    tower = _unwrap(model).model.vision_tower
    if any(p.requires_grad for p in tower.parameters()):
        raise AssertionError("the vision tower must stay frozen")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("nothing to train: --freeze_mm_mlp_adapter with --freeze_backbone freezes every part")
    return model


def _unwrap(model: nn.Module) -> nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def trainable_parameter_report(model: nn.Module) -> str:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)"
