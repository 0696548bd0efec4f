"""Training one dense task part on a frozen backbone with HF Accelerate.

Only the part (ViT-Split heads + decoder) is handed to ``accelerator.prepare``: DDP / DeepSpeed
wrap, synchronise and checkpoint the trainable weights alone, while the frozen trunk runs beside
them without autograd. One CPU, one GPU, several GPUs or nodes and DeepSpeed are all chosen by
``accelerate launch``; this code does not change.

Output folder::

    train_config.json            the resolved settings of the run
    metrics.jsonl                one line per logged step and per evaluation
    checkpoints/iter_NNNNNNN/    a loadable part (dense_task.json + model.safetensors),
                                 state/ (Accelerate: optimiser, scheduler, RNG) and trainer_state.json
    final/                       the trained part
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from llava_vitsplit.checkpoints import TRAINER_STATE, latest_complete_checkpoint
from llava_vitsplit.split import FrozenTrunk, get_preset, load_backbone

from .backbone import default_backbone_path
from .datasets import DenseDataset, load_dataset
from .distributed_setup import accelerator_options, fill_deepspeed_config
from .evaluation import evaluate
from .inference import InferenceConfig
from .losses import depth_loss, segmentation_loss
from .model import DenseTaskPart, run_parts
from .recipes import SCHEDULES, get_recipe
from .sampling import epoch_batches
from .schedules import build_scheduler
from .task import DenseTaskConfig
from .transforms import DepthTrainTransform, EvalTransform, SegmentationTrainTransform

logger = logging.getLogger(__name__)
METRICS_LOG = "metrics.jsonl"
SPLIT_OVERRIDES = ("num_task_layers", "num_prior_layers", "prior_start_layer", "selection")
DATASET_OPTIONS = ("num_classes", "reduce_zero_label", "depth_scale", "max_depth")


@dataclass
class DenseTrainConfig:
    """Every setting of a run, resolved: build it with ``from_preset`` (recipe defaults + overrides)."""

    preset: str
    data_root: Path
    output_dir: Path
    dataset: str
    crop_size: tuple[int, int]
    iters: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    task_head_lr_mult: float
    schedule: str
    warmup_iters: int
    inference: InferenceConfig
    train_scale: tuple[int, int] | None = None
    warmup_ratio: float = 1e-6
    max_grad_norm: float | None = None
    grad_accum: int = 1
    backbone_path: Path | None = None
    eval_interval: int = 4000
    save_interval: int = 4000
    log_interval: int = 10
    keep_checkpoints: int = 2
    num_workers: int = 2
    seed: int = 0
    train_split: str = "train"
    val_split: str | None = "val"
    eval_max_images: int | None = None
    photometric: bool = True
    resume: str | None = None
    mixed_precision: str | None = None
    """``no``, ``bf16`` or ``fp16``; ``None``: Accelerate's setting (``accelerate launch --mixed_precision``)."""
    split_overrides: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_root, self.output_dir = Path(self.data_root), Path(self.output_dir)
        self.backbone_path = None if self.backbone_path is None else Path(self.backbone_path)
        for name in ("iters", "batch_size", "grad_accum", "eval_interval", "save_interval", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"DenseTrainConfig.{name} = {getattr(self, name)} must be >= 1")
        for name in ("keep_checkpoints", "num_workers", "warmup_iters"):
            if getattr(self, name) < 0:
                raise ValueError(f"DenseTrainConfig.{name} = {getattr(self, name)} must be >= 0")
        if self.warmup_iters > self.iters:
            raise ValueError(
                f"DenseTrainConfig.warmup_iters = {self.warmup_iters} exceeds iters = {self.iters}"
            )
        if self.learning_rate <= 0 or self.task_head_lr_mult <= 0 or self.weight_decay < 0:
            raise ValueError(
                "DenseTrainConfig: learning_rate and task_head_lr_mult must be > 0, weight_decay >= 0"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(f"DenseTrainConfig.schedule = {self.schedule!r}: choose one of {SCHEDULES}")
        if self.mixed_precision not in (None, "no", "bf16", "fp16"):
            raise ValueError(
                f"DenseTrainConfig.mixed_precision = {self.mixed_precision!r}: choose no, bf16 or fp16"
            )
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(
                f"DenseTrainConfig.max_grad_norm = {self.max_grad_norm} must be > 0 (or None: no clipping)"
            )
        unknown = sorted(set(self.split_overrides) - set(SPLIT_OVERRIDES))
        unknown += sorted(set(self.dataset_options) - set(DATASET_OPTIONS))
        if unknown:
            raise ValueError(f"DenseTrainConfig: unknown override(s) {unknown}")

    @classmethod
    def from_preset(cls, preset: str, data_root, output_dir, **overrides) -> DenseTrainConfig:
        """The paper's recipe for ``preset`` with ``overrides`` (``None`` keeps a recipe value). A new
        ``crop_size`` rescales the recipe's train/test scales and sliding windows with it."""
        recipe = get_recipe(preset)
        if overrides.get("crop_size") is not None:
            recipe = recipe.at_crop_size(tuple(overrides["crop_size"]))
        fields = dict(
            dataset=recipe.dataset,
            crop_size=recipe.crop_size,
            train_scale=recipe.train_scale,
            iters=recipe.iters,
            batch_size=recipe.batch_size,
            learning_rate=recipe.learning_rate,
            weight_decay=recipe.weight_decay,
            task_head_lr_mult=recipe.task_head_lr_mult,
            schedule=recipe.schedule,
            warmup_iters=recipe.warmup_iters,
            warmup_ratio=recipe.warmup_ratio,
            max_grad_norm=recipe.max_grad_norm,
            inference=recipe.inference,
            eval_interval=recipe.eval_interval,
            save_interval=recipe.eval_interval,
        )
        # None keeps the recipe's or the field's default, except where None is a choice (no evaluation).
        overrides = {
            key: value for key, value in overrides.items() if value is not None or key == "val_split"
        }
        fields.update(overrides)
        # A short run keeps the recipe's warm-up share instead of failing on warm-up > iters.
        if "warmup_iters" not in overrides and fields["warmup_iters"] > fields["iters"]:
            fields["warmup_iters"] = round(fields["iters"] * recipe.warmup_iters / recipe.iters)
        return cls(preset=preset, data_root=data_root, output_dir=output_dir, **fields)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["inference"] = self.inference.to_dict()
        return {key: str(value) if isinstance(value, Path) else value for key, value in data.items()}


@dataclass
class TrainResult:
    final_dir: Path
    evaluations: list[dict]
    """``{"iter": N, "metrics": {...}}`` for every evaluation of this run (resumed ones included)."""


def _train_transform(config: DenseTrainConfig, task: str, labels):
    if task == "segmentation":
        return SegmentationTrainTransform(
            config.crop_size,
            scale=config.train_scale,
            ignore_index=labels.ignore_index,
            photometric=config.photometric,
        )
    return DepthTrainTransform(config.crop_size, train_crop=labels.train_crop)


def _load_datasets(config: DenseTrainConfig) -> tuple[DenseDataset, DenseDataset | None]:
    train_set = load_dataset(
        config.dataset, config.data_root, config.train_split, seed=config.seed, **config.dataset_options
    )
    task = get_preset(config.preset).task
    if train_set.task != task:
        raise ValueError(
            f"preset {config.preset} trains {task}, but {config.dataset} data under {config.data_root} is {train_set.task}"
        )
    train_set.transform = _train_transform(config, task, train_set.labels)
    val_set = None
    if config.val_split is not None:
        val_set = load_dataset(
            config.dataset,
            config.data_root,
            config.val_split,
            transform=EvalTransform(),
            **config.dataset_options,
        )
    return train_set, val_set


def _task_config(config: DenseTrainConfig, trunk: FrozenTrunk, dataset: DenseDataset) -> DenseTaskConfig:
    preset = get_preset(config.preset)
    adapter = trunk.adapter
    split = preset.split_config(
        num_layers=adapter.num_layers, hidden_size=adapter.hidden_size, **config.split_overrides
    )
    labels = dataset.labels
    task_fields = (
        dict(class_names=labels.class_names, ignore_index=labels.ignore_index)
        if dataset.task == "segmentation"
        else dict(min_depth=labels.min_depth, max_depth=labels.max_depth)
    )
    return DenseTaskConfig.from_split_config(
        dataset.task,
        split,
        inference=config.inference,
        preset=config.preset,
        dataset=config.dataset,
        backbone=str(config.backbone_path) if config.backbone_path else None,
        **task_fields,
    )


def parameter_groups(part: DenseTaskPart, config: DenseTrainConfig) -> list[dict]:
    """Task head at ``lr x task_head_lr_mult``; no weight decay on biases and norm weights (1-D)."""
    task_head = {id(p) for p in part.task_head_parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for param in part.parameters():
        if param.requires_grad:
            groups.setdefault((id(param) in task_head, param.ndim > 1), []).append(param)
    return [
        {
            "params": params,
            "lr": config.learning_rate * (config.task_head_lr_mult if in_task_head else 1.0),
            "weight_decay": config.weight_decay if decays else 0.0,
        }
        for (in_task_head, decays), params in sorted(groups.items())
    ]


def find_checkpoint(output_dir: Path, resume: str) -> Path | None:
    """``resume="auto"``: the latest complete checkpoint (None when there is none); else a folder."""
    if resume != "auto":
        path = Path(resume)
        if not (path / TRAINER_STATE).is_file():
            raise FileNotFoundError(f"--resume {path}: not a complete checkpoint (no {TRAINER_STATE})")
        return path
    return latest_complete_checkpoint(output_dir / "checkpoints", pattern=r"iter_(\d+)", marker=TRAINER_STATE)


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step (written after the checkpoint of an interrupted run)."""
    if path.is_file():
        lines = [line for line in path.read_text().splitlines() if line and json.loads(line)["iter"] <= step]
        path.write_text("".join(line + "\n" for line in lines))


def _summary(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key != "per_class"}


def train(config: DenseTrainConfig, *, backbone: nn.Module | None = None) -> TrainResult:
    """Train the preset's task part; ``backbone`` (a loaded model) overrides ``config.backbone_path``."""
    from accelerate import Accelerator
    from accelerate.utils import GradientAccumulationPlugin, set_seed

    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=config.grad_accum, sync_with_dataloader=False
        ),
        **accelerator_options(),
    )
    set_seed(config.seed)
    device, world, rank = accelerator.device, accelerator.num_processes, accelerator.process_index
    per_device, remainder = divmod(config.batch_size, world * config.grad_accum)
    if remainder or per_device < 1:
        raise ValueError(
            f"batch size {config.batch_size} must be a multiple of processes x grad_accum = {world} x {config.grad_accum}"
        )

    if backbone is None:
        if config.backbone_path is None:
            config.backbone_path = default_backbone_path(config.preset)
        backbone = load_backbone(config.backbone_path)
    trunk = FrozenTrunk(backbone).to(device)
    adapter = trunk.adapter
    train_set, val_set = _load_datasets(config)
    task_config = _task_config(config, trunk, train_set)
    part = DenseTaskPart(task_config, adapter).to(device)
    if world > 1 and device.type == "cuda":
        part = nn.SyncBatchNorm.convert_sync_batchnorm(part)
    needed = part.needed_hidden_states
    optimizer = torch.optim.AdamW(parameter_groups(part, config), lr=config.learning_rate)
    scheduler = build_scheduler(
        optimizer, config.schedule, config.iters, config.warmup_iters, config.warmup_ratio
    )
    # Our loop, not the YAML, sets batch, accumulation and clipping.
    fill_deepspeed_config(accelerator, per_device=per_device, grad_accum=config.grad_accum,
                          max_grad_norm=config.max_grad_norm)
    part, optimizer = accelerator.prepare(part, optimizer)
    # The scheduler counts optimiser steps itself (not prepared: Accelerate would step it once per process).
    accelerator.register_for_checkpointing(scheduler)
    part_dtype = next(accelerator.unwrap_model(part).parameters()).dtype
    if part_dtype != torch.float32:  # DeepSpeed bf16/fp16 casts the part; the trunk must feed it alike
        trunk.to(part_dtype)

    output_dir = config.output_dir
    log_path = output_dir / METRICS_LOG
    step = 0
    checkpoint = find_checkpoint(output_dir, config.resume) if config.resume else None
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint / "state"))
        step = json.loads((checkpoint / TRAINER_STATE).read_text())["step"]
        logger.info("resumed from %s at step %d", checkpoint, step)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        if checkpoint is not None:
            _trim_log(log_path, step)
        elif log_path.exists():
            log_path.unlink()

    def log(record: dict) -> None:
        if accelerator.is_main_process:
            with log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    def forward(pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        return run_parts(adapter, {"task": part}, pixel_values.to(part_dtype), needed)

    def run_evaluation() -> dict:
        part.eval()
        with accelerator.autocast():
            metrics = evaluate(
                forward,
                val_set,
                config.inference,
                device=device,
                process_index=rank,
                num_processes=world,
                reduce=lambda state: accelerator.reduce(state, "sum"),
                max_images=config.eval_max_images,
                show_progress=accelerator.is_local_main_process,
            )
        part.train()
        return metrics

    def save_checkpoint() -> None:
        folder = output_dir / "checkpoints" / f"iter_{step:07d}"
        accelerator.save_state(str(folder / "state"))
        state_dict = accelerator.get_state_dict(part)
        if accelerator.is_main_process:
            accelerator.unwrap_model(part).save_pretrained(folder, state_dict)
            (folder / TRAINER_STATE).write_text(json.dumps({"step": step}) + "\n")  # written last: complete
            finished = sorted(p for p in folder.parent.glob("iter_*") if (p / TRAINER_STATE).is_file())
            for stale in finished[: max(len(finished) - config.keep_checkpoints, 0)]:
                shutil.rmtree(stale)
        accelerator.wait_for_everyone()

    def batches(start_step: int):
        """Micro-batches from optimiser step ``start_step`` on, epoch after epoch."""
        per_epoch = len(
            epoch_batches(len(train_set), per_device, seed=config.seed, epoch=0, rank=rank, world_size=world)
        )
        epoch, skip = divmod(start_step * config.grad_accum, per_epoch)
        while True:
            train_set.set_epoch(epoch)
            order = epoch_batches(
                len(train_set), per_device, seed=config.seed, epoch=epoch, rank=rank, world_size=world
            )
            loader = torch.utils.data.DataLoader(
                train_set,
                batch_sampler=order[skip:],
                num_workers=config.num_workers,
                pin_memory=device.type == "cuda",
            )
            yield from loader
            epoch, skip = epoch + 1, 0

    loss_fn = (
        (lambda out, labels: segmentation_loss(out, labels, task_config.ignore_index))
        if task_config.task == "segmentation"
        else (lambda out, labels: depth_loss(out, labels, task_config.min_depth, task_config.max_depth))
    )
    accelerator.wait_for_everyone()  # the main process has trimmed (or removed) the log first
    logged = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.is_file() else []
    evaluations = [{"iter": r["iter"], "metrics": r["eval"]} for r in logged if "eval" in r]
    part.train()
    progress = tqdm(
        total=config.iters,
        initial=step,
        desc=f"train {config.preset}",
        disable=not accelerator.is_local_main_process,
    )
    stream = batches(step)
    window_loss, window_steps, window_seconds = 0.0, 0, 0.0
    while step < config.iters:
        started = time.perf_counter()
        for _ in range(config.grad_accum):
            batch = next(stream)
            pixel_values = batch["pixel_values"].to(device, non_blocking=True)
            labels = batch["labels"].to(device, non_blocking=True)
            with accelerator.accumulate(part):
                with accelerator.autocast():
                    loss = loss_fn(forward(pixel_values)["task"], labels)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(part.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            window_loss += loss.detach().float().item() / config.grad_accum
        scheduler.step()
        step += 1
        window_steps += 1
        window_seconds += time.perf_counter() - started
        progress.update(1)
        if step % config.log_interval == 0 or step == config.iters:
            mean_loss = accelerator.reduce(
                torch.tensor(window_loss / window_steps, device=device), "mean"
            ).item()
            lr = optimizer.param_groups[0]["lr"]  # the base rate (group 0 is outside the task head)
            log({"iter": step, "loss": mean_loss, "lr": lr, "sec_per_iter": window_seconds / window_steps})
            progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
            window_loss, window_steps, window_seconds = 0.0, 0, 0.0
        if val_set is not None and (step % config.eval_interval == 0 or step == config.iters):
            metrics = run_evaluation()
            evaluations.append({"iter": step, "metrics": metrics})
            log({"iter": step, "eval": metrics})
            if accelerator.is_local_main_process:
                progress.write(
                    f"iter {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in _summary(metrics).items())
                )
        if step % config.save_interval == 0 or step == config.iters:
            save_checkpoint()
    progress.close()

    final_dir = output_dir / "final"
    state_dict = accelerator.get_state_dict(part)
    if accelerator.is_main_process:
        accelerator.unwrap_model(part).save_pretrained(final_dir, state_dict)
    accelerator.wait_for_everyone()
    return TrainResult(final_dir, evaluations)
