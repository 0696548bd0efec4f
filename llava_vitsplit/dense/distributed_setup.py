"""What Accelerate leaves unset when `dense train` runs on several processes, filled from our settings.

- **CPU-only processes.** Accelerate (1.15) picks a process-group backend only for an accelerator
  device, or when told the run is on the CPU. Under `torchrun` on a CPU-only machine it otherwise
  finds no backend and every process trains alone on the whole batch (each writes its own log);
  under DeepSpeed it counts one process while DeepSpeed has joined them all, and DeepSpeed fails
  its batch check ("train_batch_size is not equal to micro_batch_per_gpu * gradient_acc_step *
  world_size 4 != 4 * 1 * 2"). So without an accelerator the run is marked as a CPU run (gloo
  DDP), or, under DeepSpeed, given gloo as DeepSpeed's backend.
- **Batch, accumulation and clipping** come from `dense train`'s settings, not from the YAML:
  Accelerate would otherwise fill an "auto" `gradient_clipping` with 1.0, clipping a run that the
  plain (DDP) path does not clip.
"""

from __future__ import annotations

import os

import torch


def accelerator_options() -> dict:
    """Keyword arguments for `Accelerator` that make CPU-only processes train together."""
    from accelerate.utils import InitProcessGroupKwargs

    device_api = getattr(torch, "accelerator", None)  # torch >= 2.6: CUDA, XPU, MPS, ...
    if device_api.is_available() if device_api is not None else torch.cuda.is_available():
        return {}
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":  # set by `accelerate launch`
        return {"kwargs_handlers": [InitProcessGroupKwargs(backend="gloo")]}
    return {"cpu": True}


def fill_deepspeed_config(accelerator, *, per_device: int, grad_accum: int, max_grad_norm: float | None) -> None:
    """Write our batch, accumulation and clipping into Accelerate's DeepSpeed config (if DeepSpeed runs)."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return
    plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = per_device
    plugin.deepspeed_config["gradient_accumulation_steps"] = grad_accum
    plugin.deepspeed_config["gradient_clipping"] = max_grad_norm if max_grad_norm is not None else 0.0
