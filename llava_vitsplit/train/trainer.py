"""HF `Trainer` with LLaVA's training specifics, and nothing else.

- Optimiser parameter groups: the projector (`--mm_projector_lr`) and ViT-Split's task head
  (`--vitsplit_task_head_lr`) may learn at their own rates.
- `--group_by_modality_length`: the modality-grouped sampler.
- Stage 1 checkpoints and the final stage-1 output hold only the projector (safetensors + its
  config), gathered from all ranks under ZeRO-3 (or, with gathering off, its config beside the
  shards); resuming such a checkpoint loads it back.
- Resuming a full-model checkpoint goes through `from_pretrained`, which maps its key layout.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel, Trainer

from llava_vitsplit.constants import PROJECTOR_MODULE
from llava_vitsplit.model import projector_io

from .sampler import ModalityLengthGroupedSampler

TASK_HEAD_MODULE = "task_head"


def learning_rate_for(name: str, base_lr: float, projector_lr: float | None, task_head_lr: float | None) -> float:
    """The rate of one parameter: task head, else projector, else the base rate."""
    if PROJECTOR_MODULE not in name:
        return base_lr
    if TASK_HEAD_MODULE in name and task_head_lr is not None:
        return task_head_lr
    return projector_lr if projector_lr is not None else base_lr


def build_param_groups(
    model: nn.Module,
    *,
    base_lr: float,
    weight_decay: float,
    decay_names: set[str],
    projector_lr: float | None = None,
    task_head_lr: float | None = None,
) -> list[dict]:
    """One optimiser group per (learning rate, weight decay) pair, over trainable parameters only."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        lr = learning_rate_for(name, base_lr, projector_lr, task_head_lr)
        decay = weight_decay if name in decay_names else 0.0
        groups.setdefault((lr, decay), []).append(parameter)
    if not groups:
        raise ValueError("no trainable parameter: check the freezing flags")
    return [{"params": params, "lr": lr, "weight_decay": decay} for (lr, decay), params in groups.items()]


class LlavaTrainer(Trainer):
    """`projector_only=True` is stage 1: save and resume the projector alone."""

    def __init__(self, *args, projector_only: bool = False, **kwargs) -> None:
        self.projector_only = projector_only
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            opt_model = self.model if model is None else model
            groups = build_param_groups(
                opt_model,
                base_lr=self.args.learning_rate,
                weight_decay=self.args.weight_decay,
                decay_names=set(self.get_decay_parameter_names(opt_model)),
                projector_lr=self.args.mm_projector_lr,
                task_head_lr=self.args.vitsplit_task_head_lr,
            )
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            if self._offloads_optimizer():
                # ZeRO-Offload steps the optimiser on the CPU: DeepSpeed's vectorised Adam, same groups.
                from deepspeed.ops.adam import DeepSpeedCPUAdam

                optimizer_cls = DeepSpeedCPUAdam
                optimizer_kwargs = {k: v for k, v in optimizer_kwargs.items() if k in ("lr", "betas", "eps")}
                optimizer_kwargs["adamw_mode"] = True
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, *args, **kwargs):
        result = super().compute_loss(model, inputs, *args, **kwargs)
        loss = result[0] if isinstance(result, tuple) else result
        if model.training and not loss.requires_grad:
            # A text-only batch while the LLM is frozen reaches no trainable parameter. Its backward
            # must still run (other ranks wait for its gradient all-reduce), so the loss is tied to the
            # trainable parameters with weight zero: every gradient of this step is exactly zero.
            anchor = sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
            loss = loss + anchor
            result = (loss, *result[1:]) if isinstance(result, tuple) else loss
        return result

    def _offloads_optimizer(self) -> bool:
        if not self.is_deepspeed_enabled:
            return False
        zero = self.args.hf_deepspeed_config.config.get("zero_optimization", {})
        return zero.get("offload_optimizer", {}).get("device", "none") in ("cpu", "nvme")

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if not self.args.group_by_modality_length:
            return super()._get_train_sampler(train_dataset)
        return ModalityLengthGroupedSampler(
            dataset.modality_lengths,
            batch_size=self.args.per_device_train_batch_size,
            world_size=self.args.world_size,
            seed=self.args.seed,
        )

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.projector_only:
            return super()._save(output_dir, state_dict)
        if not self.args.should_save:
            return
        # Under DeepSpeed `state_dict` is the whole model gathered from all ranks (ZeRO-3
        # partitions it); the projector's entries are picked from it. Otherwise it is None.
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        model = self.accelerator.unwrap_model(self.model, keep_torch_compile=False)
        if state_dict is None:
            projector_io.save_projector(model, output_dir)
        elif not state_dict:
            # ZeRO-3 with stage3_gather_16bit_weights_on_model_save off: only the shards are written
            # (`llava-vitsplit export-zero` consolidates them); the folder still describes the projector.
            projector_io.save_projector_config(model.config, output_dir)
        else:
            projector_io.save_projector_state(model, state_dict, output_dir)
        model.config.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = self.accelerator.unwrap_model(model if model is not None else self.model)
        if self.projector_only:
            projector_io.load_projector(model, resume_from_checkpoint)
        elif isinstance(model, PreTrainedModel):
            # `save_pretrained` writes the checkpoint in the published (llava-hf) key layout and only
            # `from_pretrained` maps it back; the Trainer's plain `load_state_dict` would match no key.
            saved = type(model).from_pretrained(resume_from_checkpoint, dtype=model.dtype)
            model.load_state_dict(saved.state_dict(), strict=True)
        else:  # PEFT: the adapters
            super()._load_from_checkpoint(resume_from_checkpoint, model)
