"""Merging a LoRA stage-2 run into a full model folder that `load_pretrained_model` opens.

The LoRA output holds the adapters and the trained projector (PEFT's `modules_to_save`), plus the
recipe of the untrained base (`llava_vitsplit_build.json`: LLM and tower folders, projector
settings). Merging rebuilds that base, applies the adapters and folds them into the weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .model_setup import BuildSpec


def merge_lora(
    lora_dir: str | Path,
    output_dir: str | Path,
    *,
    llm_path: str | Path | None = None,
    vision_tower_path: str | Path | None = None,
) -> Path:
    """Write the merged model and its processor to `output_dir`; base folders may be re-pointed."""
    from peft import PeftModel

    lora_dir, output_dir = Path(lora_dir), Path(output_dir)
    if not (lora_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{lora_dir} holds no adapter_config.json: not the output of a --lora_enable run")
    if output_dir.resolve() == lora_dir.resolve():
        raise ValueError("write the merged model to another folder than the LoRA run's")
    spec = BuildSpec.load(lora_dir)
    if llm_path is not None:
        spec = dataclasses.replace(spec, llm_path=str(Path(llm_path).resolve()))
    if vision_tower_path is not None:
        spec = dataclasses.replace(spec, vision_tower_path=str(Path(vision_tower_path).resolve()))
    base, processor = spec.build()
    merged = PeftModel.from_pretrained(base, str(lora_dir)).merge_and_unload()
    output_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return output_dir
