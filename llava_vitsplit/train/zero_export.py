"""A DeepSpeed ZeRO checkpoint (per-rank shards, no consolidated weights) -> our safetensors folder.

Under ZeRO-3 with `stage3_gather_16bit_weights_on_model_save: false` (it saves time and memory on
large runs) a checkpoint holds only each rank's shard of the fp32 master weights. DeepSpeed's own
consolidation (`deepspeed.utils.zero_to_fp32`) merges them into one state dict keyed by our
parameter names; this module decides what to write from it:

- a stage-1 checkpoint (it holds `projector_config.json`): `mm_projector.safetensors` + its config;
- any other: a full model folder (`config.json`, `model.safetensors`, the processor) that
  `load_pretrained_model` opens.

LoRA runs need no export: under ZeRO-3 the Trainer gathers the adapters whole into
`adapter_model.safetensors` at every save. DeepSpeed's shard files are pickles, so export only
checkpoints you wrote.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from llava_vitsplit.model import (
    LlavaViTSplitConfig,
    LlavaViTSplitForConditionalGeneration,
    LlavaViTSplitProcessor,
    projector_io,
)
from llava_vitsplit.model.checkpoint_format import CheckpointFormat, detect_checkpoint

logger = logging.getLogger(__name__)

DEEPSPEED_LATEST = "latest"  # DeepSpeed's pointer to the tag folder (global_stepN) of the newest save


def consolidated_state_dict(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The fp32 weights of a ZeRO-2/3 checkpoint, merged from every rank's shard by DeepSpeed."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return get_fp32_state_dict_from_zero_checkpoint(str(checkpoint))


def _model_from_state(config: LlavaViTSplitConfig, state: dict[str, torch.Tensor]):
    """The model with `state` as its weights; built on the meta device, so no random init is spent."""
    with torch.device("meta"):
        model = LlavaViTSplitForConditionalGeneration(config)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"the consolidated weights do not fit the checkpoint's config.json: missing {missing[:8]}, "
            f"unexpected {unexpected[:8]}"
        )
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    return model


def export_zero_checkpoint(
    checkpoint: str | Path, output_dir: str | Path, *, dtype: torch.dtype = torch.float32
) -> Path:
    """Write the model (or, for stage 1, the projector) of a ZeRO checkpoint folder into `output_dir`."""
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    if not (checkpoint / DEEPSPEED_LATEST).is_file():
        raise FileNotFoundError(
            f"{checkpoint} holds no DeepSpeed '{DEEPSPEED_LATEST}' file: not a checkpoint saved with --deepspeed"
        )
    if detect_checkpoint(checkpoint).format == CheckpointFormat.LORA:
        raise ValueError(
            f"{checkpoint} is a LoRA checkpoint: its adapters are already whole in adapter_model.safetensors; "
            "merge them with `llava-vitsplit merge-lora`"
        )
    state = consolidated_state_dict(checkpoint)
    config = LlavaViTSplitConfig.from_pretrained(checkpoint)
    model = _model_from_state(config, {key: tensor.to(dtype) for key, tensor in state.items()})
    output_dir.mkdir(parents=True, exist_ok=True)
    projector_only = (checkpoint / projector_io.PROJECTOR_CONFIG).is_file()
    if projector_only:
        projector_io.save_projector(model, output_dir)
        config.save_pretrained(output_dir)
    else:
        model.save_pretrained(output_dir)
    LlavaViTSplitProcessor.from_pretrained(checkpoint).save_pretrained(output_dir)
    logger.info(
        "%d tensors consolidated from %s; %s written to %s",
        len(state), checkpoint, "the projector" if projector_only else "the model", output_dir,
    )
    return output_dir
