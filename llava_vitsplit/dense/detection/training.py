"""Training a ViT-Split Mask R-CNN part on a COCO-format folder with HF Accelerate.

Output folder: ``train_config.json``, ``metrics.jsonl`` (losses and lr every ``log_interval``, every
evaluation with box and mask AP), ``data_report.json`` (what the annotation checks left out),
``checkpoints/iter_N/`` (a loadable part at each evaluation) and ``final/``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from .dataset import CocoDetectionDataset, collate, train_transforms
from .evaluation import evaluate_detection
from .model import ViTSplitMaskRCNN, vitsplit_maskrcnn
from .optim import LAYER_DECAY, build_optimizer, build_scheduler

METRICS_LOG = "metrics.jsonl"
EPOCHS_1X = 12


@dataclass(frozen=True)
class DetectionTrainConfig:
    """The authors' recipe by default (AdamW 1e-4, wd 0.05, layer decay, 1x schedule, batch 16)."""

    data_root: Path
    output_dir: Path
    preset: str = "coco-s"
    backbone_path: Path | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    epochs: int = EPOCHS_1X
    iters: int | None = None
    """Optimiser steps; ``None``: ``epochs`` over the training set. Milestones stay at 8/12 and 11/12."""
    batch_size: int = 16
    """Global batch: per-device batch x processes x ``grad_accum``."""
    grad_accum: int = 1
    learning_rate: float = 1e-4
    weight_decay: float = 0.05
    layer_decay: float | None = None
    """``None``: the preset's (0.76 S, 0.7 B, 0.6 L)."""
    warmup_iters: int = 500
    warmup_ratio: float = 1e-3
    min_size: tuple[int, ...] = (800,)
    max_size: int = 1333
    jitter_size: int | None = None
    """Large-scale jitter to this square size (``None``: the 1x recipe's resize + flip)."""
    neck_norm: str = "batch"
    proposals: tuple[int, int] = (2000, 1000)
    rois_per_image: int = 512
    detections_per_image: int = 100
    max_grad_norm: float | None = None
    eval_interval: int | None = None
    """Steps between evaluations; ``None``: once per epoch."""
    eval_max_images: int | None = None
    log_interval: int = 20
    mixed_precision: str | None = None
    """``no``, ``bf16`` or ``fp16`` (the authors train in fp16 on GPU); ``None``: Accelerate's setting."""
    num_workers: int = 2
    seed: int = 0
    split_overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size >= 1,
            "grad_accum": self.grad_accum >= 1 and self.batch_size % self.grad_accum == 0,
            "epochs": self.epochs >= 1,
            "iters": self.iters is None or self.iters >= 1,
            "learning_rate": self.learning_rate > 0,
            "warmup_iters": self.warmup_iters >= 0,
            "eval_interval": self.eval_interval is None or self.eval_interval >= 1,
            "log_interval": self.log_interval >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"DetectionTrainConfig: invalid {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}"
            )

    @property
    def resolved_layer_decay(self) -> float:
        return self.layer_decay if self.layer_decay is not None else LAYER_DECAY.get(self.preset, 1.0)

    def to_dict(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}


@dataclass
class DetectionTrainResult:
    final_dir: Path
    evaluations: list[dict]
    data_report: dict


class DetectionTrainer:
    """``run()`` = ``setup()``, then ``step()`` until done with ``evaluate()`` / ``save()`` between."""

    def __init__(self, config: DetectionTrainConfig) -> None:
        self.config = config
        self.evaluations: list[dict] = []
        self.iteration = 0

    # ------------------------------------------------------------------ setup

    def setup(self) -> None:
        config = self.config
        self.accelerator = Accelerator(
            mixed_precision=config.mixed_precision, gradient_accumulation_steps=config.grad_accum
        )
        set_seed(config.seed)
        self.train_set = CocoDetectionDataset(
            config.data_root, config.train_split, train_transforms(jitter_size=config.jitter_size)
        )
        self.val_set = (
            CocoDetectionDataset(config.data_root, config.val_split, category_ids=self.train_set.category_ids)
            if config.val_split
            else None
        )
        instances = self.train_set.instances
        self.model: ViTSplitMaskRCNN = vitsplit_maskrcnn(
            config.preset,
            class_names=instances.class_names,
            category_ids=instances.category_ids,
            backbone=config.backbone_path,
            split_overrides=config.split_overrides,
            min_size=config.min_size,
            max_size=config.max_size,
            neck_norm=config.neck_norm,
            proposals=config.proposals,
            rois_per_image=config.rois_per_image,
            detections_per_image=config.detections_per_image,
        ).to(self.accelerator.device)
        optimizer = build_optimizer(
            self.model, config.learning_rate, config.weight_decay, config.resolved_layer_decay
        )
        scheduler = build_scheduler(
            optimizer, self.total_steps, min(config.warmup_iters, self.total_steps), config.warmup_ratio
        )
        # The scheduler stays outside ``prepare``: it counts optimiser steps, whatever the process count.
        self.scheduler = scheduler
        self.detector, self.optimizer, self.loader = self.accelerator.prepare(
            self.model.detector, optimizer, self._train_loader()
        )
        self._write_run_files()

    @property
    def per_device_batch(self) -> int:
        processes = self.accelerator.num_processes * self.config.grad_accum
        if self.config.batch_size % processes:
            raise ValueError(
                f"batch_size {self.config.batch_size} is not divisible by processes x grad_accum = {processes}"
            )
        return self.config.batch_size // processes

    @property
    def total_steps(self) -> int:
        if self.config.iters is not None:
            return self.config.iters
        return self.config.epochs * max(1, math.ceil(len(self.train_set) / self.config.batch_size))

    def _train_loader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(
            self.train_set,
            batch_size=self.per_device_batch,
            sampler=RandomSampler(self.train_set, generator=generator),
            collate_fn=collate,
            num_workers=self.config.num_workers,
            drop_last=len(self.train_set) >= self.per_device_batch,
        )

    def _write_run_files(self) -> None:
        output = self.config.output_dir
        output.mkdir(parents=True, exist_ok=True)
        report = {"train": self.train_set.instances.report.to_dict()}
        if self.val_set is not None:
            report["val"] = self.val_set.instances.report.to_dict()
        self.data_report = report
        if self.accelerator.is_main_process:
            (output / "train_config.json").write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
            (output / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
            print(f"train split: {self.train_set.instances.report.summary()}")

    # ------------------------------------------------------------------ loop

    def batches(self):
        """Endless batches (a fresh shuffle each epoch), moved to the device."""
        device = self.accelerator.device
        while True:
            for images, targets in self.loader:
                yield (
                    [image.to(device) for image in images],
                    [_to_device(target, device) for target in targets],
                )

    def step(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, float]:
        with self.accelerator.accumulate(self.detector):
            losses = self.detector(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"iteration {self.iteration}: loss is not finite ({ {k: float(v) for k, v in losses.items()} }); "
                    "lower --lr or check the data report"
                )
            self.accelerator.backward(loss)
            if self.config.max_grad_norm and self.accelerator.sync_gradients:
                self.accelerator.clip_grad_norm_(self.detector.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
            if self.accelerator.sync_gradients:
                self.scheduler.step()
            self.optimizer.zero_grad()
        return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}

    def evaluate(self) -> dict:
        metrics = evaluate_detection(self.model, self.val_set, max_images=self.config.eval_max_images)
        self.model.train()
        record = {"iter": self.iteration, "metrics": metrics}
        self.evaluations.append(record)
        self._log(record)
        return metrics

    def save(self, folder: Path) -> Path:
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self.model.save_pretrained(folder)
        return folder

    def _log(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with (self.config.output_dir / METRICS_LOG).open("a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")

    @property
    def eval_interval(self) -> int:
        per_epoch = max(1, math.ceil(len(self.train_set) / self.config.batch_size))
        return self.config.eval_interval or per_epoch

    def run(self) -> DetectionTrainResult:
        self.setup()
        self.model.train()
        batches = self.batches()
        progress = tqdm(
            total=self.total_steps, desc="detection", disable=not self.accelerator.is_main_process
        )
        while self.iteration < self.total_steps:
            for _ in range(self.config.grad_accum):
                losses = self.step(*next(batches))
            self.iteration += 1
            progress.update()
            if self.iteration % self.config.log_interval == 0:
                self._log({"iter": self.iteration, "lr": self.scheduler.get_last_lr()[-1], **losses})
            if self.iteration % self.eval_interval == 0 or self.iteration == self.total_steps:
                if self.val_set is not None and self.accelerator.is_main_process:
                    self.evaluate()
                if self.iteration < self.total_steps:
                    self.save(self.config.output_dir / "checkpoints" / f"iter_{self.iteration}")
        progress.close()
        final = self.save(self.config.output_dir / "final")
        return DetectionTrainResult(final, self.evaluations, self.data_report)


def _to_device(target: dict, device: torch.device) -> dict:
    return {k: v.as_subclass(torch.Tensor).to(device) if torch.is_tensor(v) else v for k, v in target.items()}


def train_detection(config: DetectionTrainConfig) -> DetectionTrainResult:
    return DetectionTrainer(config).run()
