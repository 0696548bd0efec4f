"""Training one dense task part on a frozen backbone with HF Accelerate.

Only the part (ViT-Split heads + decoder) is handed to ``accelerator.prepare``: DDP / DeepSpeed
wrap, synchronise and checkpoint the trainable weights alone, while the frozen trunk runs beside
them without autograd. One CPU, one GPU, several GPUs or nodes and DeepSpeed are all chosen by
``accelerate launch``; this code does not change. What differs between tasks (transforms, batching,
loss, evaluation) is the task's (``dense.tasks``); the loop names none.

Output folder::

    train_config.json            the resolved settings of the run
    metrics.jsonl                one line per logged step and per evaluation
    checkpoints/checkpoint_N/    Accelerate's state at step N (weights, optimiser, scheduler, RNG),
                                 part/ (a loadable part: dense_task.json + model.safetensors) and
                                 trainer_state.json (written last: the checkpoint is complete);
                                 Accelerate's ProjectConfiguration names them and keeps the newest
                                 keep_checkpoints
    final/                       the trained part
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from llava_vitsplit.checkpoints import (
    TRAINER_STATE,
    latest_complete_checkpoint,
    numbered_checkpoints,
)
from llava_vitsplit.split import FrozenTrunk, get_preset, load_backbone

from .datasets import DenseDataset, load_dataset
from .distributed_setup import accelerator_options, fill_deepspeed_config
from .inference import InferenceConfig
from .model import trunk_options
from .recipes import SCHEDULES, get_recipe
from .sampling import epoch_batches
from .schedules import build_scheduler
from .task import DenseTaskConfig
from .tasks import DenseTask, PartRunner, Sharding, canonical_task_name, get_task

logger = logging.getLogger(__name__)
METRICS_LOG = "metrics.jsonl"
CHECKPOINT_PATTERN = r"checkpoint_(\d+)"  # Accelerate's own checkpoint naming, numbered by the step
PART_FOLDER = "part"
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
    """The backbone folder; required unless ``train`` is given a loaded backbone (the CLI fills in the
    quick-start DINOv2-S for ``dinov2-s`` presets)."""
    task: str | None = None
    """A registered dense task; ``None``: the preset's."""
    position_interpolation: str | None = None
    """DINOv2 position-embedding resize of the trunk: ``None`` (transformers') or ``"dinov2"`` (the
    original DINOv2's, as the authors' backbone; ``split.backbones.dinov2``)."""
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
    scale_jitter: int | None = None
    """Large-scale jitter (detection): rescale each image 0.1-2x around a ``scale_jitter`` square, then
    crop/pad it to that square; ``None``: the 1x recipe (flip only, Mask R-CNN resizes)."""
    resume: str | None = None
    mixed_precision: str | None = None
    """``no``, ``bf16`` or ``fp16``; ``None``: Accelerate's setting (``accelerate launch --mixed_precision``)."""
    layer_decay: float | None = None
    """Task-head copy j of K_t at ``lr x task_head_lr_mult x layer_decay^(K_t - j)`` (detection's recipe);
    ``None``: one rate for the whole task head."""
    split_overrides: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    task_options: dict = field(default_factory=dict)
    """Task-specific part settings (``DenseTaskConfig.options``; the task validates them)."""

    def __post_init__(self) -> None:
        self.data_root, self.output_dir = Path(self.data_root), Path(self.output_dir)
        self.backbone_path = None if self.backbone_path is None else Path(self.backbone_path)
        for name in ("iters", "batch_size", "grad_accum", "eval_interval", "save_interval", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"DenseTrainConfig.{name} = {getattr(self, name)} must be >= 1")
        self.task = canonical_task_name(self.task or get_preset(self.preset).task)
        if self.keep_checkpoints < 1:
            raise ValueError(f"DenseTrainConfig.keep_checkpoints = {self.keep_checkpoints} must be >= 1")
        for name in ("num_workers", "warmup_iters"):
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
        if self.scale_jitter is not None:
            if self.scale_jitter < 1:
                raise ValueError(f"DenseTrainConfig.scale_jitter = {self.scale_jitter} must be >= 1 (or None)")
            if "scale_jitter" not in get_task(self.task).train_fields:
                raise ValueError(f"DenseTrainConfig.scale_jitter: the {self.task} task has no large-scale jitter")
        if self.mixed_precision not in (None, "no", "bf16", "fp16"):
            raise ValueError(
                f"DenseTrainConfig.mixed_precision = {self.mixed_precision!r}: choose no, bf16 or fp16"
            )
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"DenseTrainConfig.layer_decay = {self.layer_decay} must be in (0, 1] (or None)")
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
            layer_decay=recipe.layer_decay,
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


def _load_datasets(config: DenseTrainConfig, task: DenseTask) -> tuple[DenseDataset, DenseDataset | None]:
    train_set = load_dataset(
        config.dataset, config.data_root, config.train_split, seed=config.seed, **config.dataset_options
    )
    try:
        task.check_dataset(train_set)
    except ValueError as error:
        raise ValueError(
            f"preset {config.preset} trains {task.name}, but {config.dataset} data under {config.data_root} "
            f"does not fit: {error}"
        ) from error
    train_set.transform = task.train_transform(config, train_set.labels)
    val_set = None
    if config.val_split is not None:
        val_set = load_dataset(
            config.dataset,
            config.data_root,
            config.val_split,
            transform=task.eval_transform(),
            **config.dataset_options,
        )
    return train_set, val_set


def _task_config(config: DenseTrainConfig, trunk: FrozenTrunk, dataset: DenseDataset) -> DenseTaskConfig:
    adapter = trunk.adapter
    split = get_preset(config.preset).split_config(
        num_layers=adapter.num_layers, hidden_size=adapter.hidden_size, **config.split_overrides
    )
    task = get_task(config.task)
    fields = task.part_fields(dataset.labels)
    options = {**fields.pop("options", {}), **task.part_options(config)}
    return DenseTaskConfig.from_split_config(
        config.task,
        split,
        inference=config.inference,
        preset=config.preset,
        dataset=config.dataset,
        backbone=str(config.backbone_path) if config.backbone_path else None,
        position_interpolation=config.position_interpolation,
        options=options,
        **fields,
    )


def task_head_scales(part: nn.Module, config: DenseTrainConfig) -> dict[int, float]:
    """``{id(parameter): lr multiplier}`` over the task head: ``task_head_lr_mult``, times
    ``layer_decay^(K_t - j)`` for copy j of K_t when layer-wise decay is on (the last copy at 1)."""
    blocks = list(part.vitsplit.task_head)
    decay = config.layer_decay or 1.0
    return {
        id(param): config.task_head_lr_mult * decay ** (len(blocks) - 1 - index)
        for index, block in enumerate(blocks)
        for param in block.parameters()
    }


def parameter_groups(part: nn.Module, config: DenseTrainConfig) -> list[dict]:
    """Task head at its scaled rate (``task_head_scales``); no weight decay on biases and norm weights (1-D)."""
    scales = task_head_scales(part, config)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for param in part.parameters():
        if param.requires_grad:
            groups.setdefault((scales.get(id(param), 1.0), param.ndim > 1), []).append(param)
    return [
        {"params": params, "lr": config.learning_rate * scale, "weight_decay": config.weight_decay if decays else 0.0}
        for (scale, decays), params in sorted(groups.items(), key=lambda item: (item[0][0] != 1.0, item[0]))
    ]


def find_checkpoint(output_dir: Path, resume: str) -> Path | None:
    """``resume="auto"``: the latest complete checkpoint (None when there is none); else a folder."""
    if resume != "auto":
        path = Path(resume)
        if not (path / TRAINER_STATE).is_file():
            raise FileNotFoundError(f"--resume {path}: not a complete checkpoint (no {TRAINER_STATE})")
        return path
    return latest_complete_checkpoint(
        output_dir / "checkpoints", pattern=CHECKPOINT_PATTERN, marker=TRAINER_STATE
    )


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past the resumed step (written after the checkpoint of an interrupted run)."""
    if path.is_file():
        lines = [line for line in path.read_text().splitlines() if line and json.loads(line)["iter"] <= step]
        path.write_text("".join(line + "\n" for line in lines))


class DenseTrainer:
    """One training run: ``setup`` (in the constructor), ``resume``, then ``train`` repeats ``step``
    and, at their intervals, ``log``, ``evaluate`` and ``save``."""

    def __init__(self, config: DenseTrainConfig, *, backbone: nn.Module | None = None) -> None:
        self.config = config
        self.task = get_task(config.task)
        self.step_count = 0
        self.evaluations: list[dict] = []
        self.setup(backbone)

    # ---- setup

    def setup(self, backbone: nn.Module | None) -> None:
        from accelerate import Accelerator
        from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration, set_seed

        config = self.config
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            project_config=ProjectConfiguration(
                project_dir=str(config.output_dir),
                automatic_checkpoint_naming=True,
                total_limit=config.keep_checkpoints,
            ),
            gradient_accumulation_plugin=GradientAccumulationPlugin(
                num_steps=config.grad_accum, sync_with_dataloader=False
            ),
            **accelerator_options(),
        )
        set_seed(config.seed)
        self.per_device = self._per_device_batch()
        trunk = FrozenTrunk(self._backbone(backbone), **trunk_options(config.position_interpolation))
        trunk.to(self.accelerator.device)
        self.train_set, self.val_set = _load_datasets(config, self.task)
        part = self.task.build_part(_task_config(config, trunk, self.train_set), trunk.adapter)
        self._prepare(part.to(self.accelerator.device), trunk)
        self.log_path = config.output_dir / METRICS_LOG

    def _per_device_batch(self) -> int:
        world, accum = self.accelerator.num_processes, self.config.grad_accum
        per_device, remainder = divmod(self.config.batch_size, world * accum)
        if remainder or per_device < 1:
            raise ValueError(
                f"batch size {self.config.batch_size} must be a multiple of processes x grad_accum = {world} x {accum}"
            )
        return per_device

    def _backbone(self, backbone: nn.Module | None) -> nn.Module:
        if backbone is not None:
            return backbone
        if self.config.backbone_path is None:
            raise ValueError("DenseTrainConfig.backbone_path is not set: give a backbone folder")
        return load_backbone(self.config.backbone_path)

    def _prepare(self, part: nn.Module, trunk: FrozenTrunk) -> None:
        """Optimiser and schedule; only the part goes through ``accelerator.prepare``."""
        config, accelerator = self.config, self.accelerator
        if accelerator.num_processes > 1 and accelerator.device.type == "cuda":
            part = nn.SyncBatchNorm.convert_sync_batchnorm(part)
        needed = part.needed_hidden_states
        optimizer = torch.optim.AdamW(parameter_groups(part, config), lr=config.learning_rate)
        self.scheduler = build_scheduler(
            optimizer, config.schedule, config.iters, config.warmup_iters, config.warmup_ratio
        )
        # Our loop, not the YAML, sets batch, accumulation and clipping.
        fill_deepspeed_config(
            accelerator, per_device=self.per_device, grad_accum=config.grad_accum, max_grad_norm=config.max_grad_norm
        )
        self.part, self.optimizer = accelerator.prepare(part, optimizer)
        # The scheduler counts optimiser steps itself (not prepared: Accelerate would step it once per process).
        accelerator.register_for_checkpointing(self.scheduler)
        dtype = next(accelerator.unwrap_model(self.part).parameters()).dtype
        if dtype != torch.float32:  # DeepSpeed bf16/fp16 casts the part; the trunk must feed it alike
            trunk.to(dtype)
        self.runner = PartRunner(trunk.adapter, self.part, needed, dtype)

    # ---- resume

    def resume(self) -> None:
        """Load the checkpoint ``config.resume`` names (if any) and start the log afresh or from it."""
        config, accelerator = self.config, self.accelerator
        checkpoint = find_checkpoint(config.output_dir, config.resume) if config.resume else None
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            self.step_count = json.loads((checkpoint / TRAINER_STATE).read_text())["step"]
            logger.info("resumed from %s at step %d", checkpoint, self.step_count)
        if accelerator.is_main_process:
            config.output_dir.mkdir(parents=True, exist_ok=True)
            (config.output_dir / "train_config.json").write_text(
                json.dumps(config.to_dict(), indent=2) + "\n"
            )
            self._drop_checkpoints_after(self.step_count)
            if checkpoint is not None:
                _trim_log(self.log_path, self.step_count)
            elif self.log_path.exists():
                self.log_path.unlink()
        accelerator.wait_for_everyone()  # the main process has trimmed (or removed) the log first
        logged = (
            [json.loads(line) for line in self.log_path.read_text().splitlines()]
            if self.log_path.is_file()
            else []
        )
        self.evaluations = [{"iter": r["iter"], "metrics": r["eval"]} for r in logged if "eval" in r]

    def _drop_checkpoints_after(self, step: int) -> None:
        """Checkpoints past the resumed step (unfinished, or of a run being redone) would block their names."""
        for number, path in numbered_checkpoints(self.config.output_dir / "checkpoints", CHECKPOINT_PATTERN):
            if number > step:
                logger.warning("removing %s: this run restarts at step %d", path, step)
                shutil.rmtree(path)

    # ---- data

    def batches(self) -> Iterator:
        """Micro-batches from the current optimiser step on, epoch after epoch (``skip_first_batches``
        fast-forwards a resumed run to where it stopped)."""
        accelerator, config = self.accelerator, self.config
        shard = dict(seed=config.seed, rank=accelerator.process_index, world_size=accelerator.num_processes)
        per_epoch = len(epoch_batches(len(self.train_set), self.per_device, epoch=0, **shard))
        first_epoch, skip = divmod(self.step_count * config.grad_accum, per_epoch)
        for epoch in itertools.count(first_epoch):
            self.train_set.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(
                self.train_set,
                batch_sampler=epoch_batches(len(self.train_set), self.per_device, epoch=epoch, **shard),
                collate_fn=self.task.collate,
                num_workers=config.num_workers,
                pin_memory=accelerator.device.type == "cuda",
            )
            yield from accelerator.skip_first_batches(loader, skip) if skip else loader
            skip = 0

    # ---- the loop

    def step(self, stream: Iterator) -> float:
        """One optimiser step over ``grad_accum`` micro-batches; returns their mean loss."""
        accelerator, config = self.accelerator, self.config
        total = 0.0
        for _ in range(config.grad_accum):
            batch = next(stream)
            with accelerator.accumulate(self.part):
                with accelerator.autocast():
                    loss = self.task.training_loss(self.runner, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(self.part.parameters(), config.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()
            total += loss.detach().float().item() / config.grad_accum
        self.scheduler.step()
        self.step_count += 1
        return total

    def evaluate(self) -> dict:
        accelerator = self.accelerator
        self.part.eval()
        with accelerator.autocast():
            metrics = self.task.evaluate(
                self.task.eval_forward(self.runner),
                self.val_set,
                self.config.inference,
                device=accelerator.device,
                sharding=Sharding(
                    accelerator.process_index,
                    accelerator.num_processes,
                    lambda state: accelerator.reduce(state, "sum"),
                    accelerator.gather_for_metrics,
                ),
                output=self.runner.OUTPUT,
                max_images=self.config.eval_max_images,
                show_progress=accelerator.is_local_main_process,
            )
        self.part.train()
        return metrics

    def save(self) -> Path:
        """A checkpoint at the current step: Accelerate's state (named ``checkpoint_<step>`` and rotated to
        the newest ``keep_checkpoints`` by its ``ProjectConfiguration``), the loadable part, and
        ``trainer_state.json`` last (the checkpoint is complete)."""
        accelerator = self.accelerator
        accelerator.project_configuration.iteration = self.step_count  # Accelerate numbers by saves; we by steps
        folder = Path(accelerator.save_state())
        self.save_part(folder / PART_FOLDER)
        if accelerator.is_main_process:
            (folder / TRAINER_STATE).write_text(json.dumps({"step": self.step_count}) + "\n")
        accelerator.wait_for_everyone()
        return folder

    def save_part(self, folder: Path) -> Path:
        state_dict = self.accelerator.get_state_dict(self.part)
        if self.accelerator.is_main_process:
            self.accelerator.unwrap_model(self.part).save_pretrained(folder, state_dict)
        self.accelerator.wait_for_everyone()
        return folder

    def log(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with self.log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")

    def train(self) -> TrainResult:
        """Resume if asked, train to ``config.iters``, write ``final/``."""
        config = self.config
        self.resume()
        self.part.train()
        progress = tqdm(
            total=config.iters,
            initial=self.step_count,
            desc=f"train {config.preset}",
            disable=not self.accelerator.is_local_main_process,
        )
        stream = self.batches()
        window = _Window()
        while self.step_count < config.iters:
            started = time.perf_counter()
            window.add(self.step(stream), time.perf_counter() - started)
            progress.update(1)
            self._after_step(window, progress)
        progress.close()
        return TrainResult(self.save_part(config.output_dir / "final"), self.evaluations)

    def _after_step(self, window: _Window, progress: tqdm) -> None:
        step, config = self.step_count, self.config
        last = step == config.iters
        if step % config.log_interval == 0 or last:
            self._log_window(window, progress)
        if self.val_set is not None and (step % config.eval_interval == 0 or last):
            metrics = self.evaluate()
            self.evaluations.append({"iter": step, "metrics": metrics})
            self.log({"iter": step, "eval": metrics})
            if self.accelerator.is_local_main_process:
                summary = self.task.summary(metrics)
                progress.write(f"iter {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))
        if step % config.save_interval == 0 or last:
            self.save()

    def _log_window(self, window: _Window, progress: tqdm) -> None:
        device = self.accelerator.device
        mean_loss = self.accelerator.reduce(torch.tensor(window.mean_loss, device=device), "mean").item()
        lr = self.optimizer.param_groups[0]["lr"]  # the base rate (group 0 is at scale 1)
        self.log({"iter": self.step_count, "loss": mean_loss, "lr": lr, "sec_per_iter": window.mean_seconds})
        progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}")
        window.reset()


@dataclass
class _Window:
    """Losses and timings since the last log line."""

    loss: float = 0.0
    seconds: float = 0.0
    steps: int = 0

    def add(self, loss: float, seconds: float) -> None:
        self.loss, self.seconds, self.steps = self.loss + loss, self.seconds + seconds, self.steps + 1

    @property
    def mean_loss(self) -> float:
        return self.loss / self.steps

    @property
    def mean_seconds(self) -> float:
        return self.seconds / self.steps

    def reset(self) -> None:
        self.loss, self.seconds, self.steps = 0.0, 0.0, 0


def train(config: DenseTrainConfig, *, backbone: nn.Module | None = None) -> TrainResult:
    """Train the config's task part; ``backbone`` (a loaded model) overrides ``config.backbone_path``."""
    return DenseTrainer(config, backbone=backbone).train()
