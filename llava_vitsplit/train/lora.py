"""Merging a LoRA stage-2 run into a full model folder that `load_pretrained_model` opens.

The LoRA output holds the adapters and the trained projector (PEFT's `modules_to_save`), the
model's `config.json`, and `llava_vitsplit_build.json`, which names the LLM folder the run
started from. The builder rebuilds that base, applies the adapters and folds them in.
"""

from __future__ import annotations

from pathlib import Path

import torch

from llava_vitsplit.model.builder import load_model

from .model_setup import BuildSpec


def merge_lora(
    lora_dir: str | Path,
    output_dir: str | Path,
    *,
    llm_path: str | Path | None = None,
    vision_tower_path: str | Path | None = None,
) -> Path:
    """Write the merged model and its processor to `output_dir`; base folders may be re-pointed."""
    lora_dir, output_dir = Path(lora_dir), Path(output_dir)
    if not (lora_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{lora_dir} holds no adapter_config.json: not the output of a --lora_enable run")
    if output_dir.resolve() == lora_dir.resolve():
        raise ValueError("write the merged model to another folder than the LoRA run's")
    spec = BuildSpec.load(lora_dir)
    model, processor = load_model(
        lora_dir,
        model_base=llm_path or spec.llm_path,
        vision_tower=vision_tower_path or spec.vision_tower_path,
        device="cpu",
        torch_dtype=torch.float32,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
