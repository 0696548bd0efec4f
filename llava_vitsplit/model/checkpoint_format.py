"""What a checkpoint folder holds, decided once from its files: the format, and its JSON read once.

Formats (``CheckpointFormat``):

* ``lora``: ``adapter_config.json`` (PEFT adapters; the projector rides along as a module to save);
* ``projector``: ``mm_projector.safetensors`` (ours) or ``mm_projector.bin`` (LLaVA's / the authors')
  without full model weights: a stage-1 output;
* ``llava_vitsplit``: ``config.json`` with ``model_type`` ``llava_vitsplit``: this package's folder;
* ``llava-hf``: ``model_type`` ``llava``: transformers' ``LlavaForConditionalGeneration``;
* ``llava``: ``model_type`` ``llava_llama``/``llava_mistral``: an original LLaVA checkpoint.

LLaVA picks its loading path from substrings of the folder name ("lora", "llava"); here the files decide.
``llava_vitsplit.model.builder`` has one reader per format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .checkpoint_files import read_json
from .configuration import LlavaViTSplitConfig
from .projector_io import LLAVA_PROJECTOR_WEIGHTS, PROJECTOR_WEIGHTS

MODEL_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# Original LLaVA's model types and the LLM architecture under each.
LLAVA_MODEL_TYPES = {"llava_llama": "llama", "llava_mistral": "mistral"}


class CheckpointFormat:
    OURS = "llava_vitsplit"
    LLAVA_HF = "llava-hf"
    LLAVA = "llava"
    PROJECTOR = "projector"
    LORA = "lora"

    FULL_MODELS = (OURS, LLAVA_HF, LLAVA)
    OVER_A_BASE = (PROJECTOR, LORA)  # need model_base (the LLM they were trained on)


_FULL_MODEL_TYPES = {
    LlavaViTSplitConfig.model_type: CheckpointFormat.OURS,
    "llava": CheckpointFormat.LLAVA_HF,
    **{model_type: CheckpointFormat.LLAVA for model_type in LLAVA_MODEL_TYPES},
}


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder with its format named and its ``config.json`` read (``None`` if absent)."""

    folder: Path
    format: str
    config: dict | None = None

    @property
    def projector_file(self) -> Path | None:
        """The projector weights beside the model: ours first, then LLaVA's."""
        for name in (PROJECTOR_WEIGHTS, LLAVA_PROJECTOR_WEIGHTS):
            if (self.folder / name).is_file():
                return self.folder / name
        return None


def detect_checkpoint(folder: str | os.PathLike) -> Checkpoint:
    """The format of ``folder``; a folder that holds no LLaVA model is an error saying what it holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model_path {folder} is not a folder")
    config = read_json(folder / "config.json")
    if (folder / "adapter_config.json").is_file():
        return Checkpoint(folder, CheckpointFormat.LORA, config)
    has_projector = any((folder / name).is_file() for name in (PROJECTOR_WEIGHTS, LLAVA_PROJECTOR_WEIGHTS))
    if has_projector and not any((folder / name).is_file() for name in MODEL_WEIGHTS):
        return Checkpoint(folder, CheckpointFormat.PROJECTOR, config)
    if config is None:
        raise FileNotFoundError(f"{folder} holds no model: no config.json, adapter_config.json or projector weights")
    model_type = config.get("model_type")
    if model_type not in _FULL_MODEL_TYPES:
        raise ValueError(f"{folder / 'config.json'}: model_type {model_type!r} is not a LLaVA model")
    return Checkpoint(folder, _FULL_MODEL_TYPES[model_type], config)


def is_full_model(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a whole LLaVA model (ours, llava-hf or original LLaVA) rather than an LLM."""
    try:
        return detect_checkpoint(folder).format in CheckpointFormat.FULL_MODELS
    except (FileNotFoundError, ValueError):
        return False
