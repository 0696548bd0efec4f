"""Import a ``llava-hf`` folder (transformers' ``LlavaForConditionalGeneration`` + ``LlavaProcessor``).

The weights layout is already ours and the config is ours with an MLP projector, so this is a strict
load (every tensor accounted for) plus our processor, with LLaVA's ``pad`` geometry unless asked
otherwise (``square`` reproduces transformers' ``LlavaProcessor``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .checkpoint_format import CheckpointFormat, detect_checkpoint
from .modeling import LlavaViTSplitForConditionalGeneration
from .processing import LlavaViTSplitProcessor


def import_llava_hf(
    folder: str | os.PathLike, *, dtype: torch.dtype | None = None, image_aspect_ratio: str = "pad"
) -> tuple[LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor]:
    folder = Path(folder)
    if detect_checkpoint(folder).format != CheckpointFormat.LLAVA_HF:
        raise ValueError(f"{folder} is not a llava-hf folder (config.json with model_type 'llava')")
    model = LlavaViTSplitForConditionalGeneration.from_pretrained(folder, dtype=dtype or "auto")
    processor = LlavaViTSplitProcessor.from_pretrained(folder, image_aspect_ratio=image_aspect_ratio)
    return model.eval(), processor
