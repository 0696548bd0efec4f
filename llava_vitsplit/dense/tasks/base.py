"""The task interface: everything that differs between dense tasks lives behind ``DenseTask``.

The training loop, evaluation, ``DenseModel`` and the ``dense`` commands hold no task names: they ask
the trained part's task (``get_task(config.task)``) for its part, transforms, batching, loss,
evaluation, metric table and drawing. ``DenseTask`` assumes nothing about the shape of a batch or a
prediction (detection batches lists of variable-size images with box targets and returns a loss dict
inside its model). ``PixelTask`` is the shared base of the per-pixel tasks (segmentation, depth): one
map per image, a ViT-Split part with a convolutional decoder, sliding-window inference and
metrics that are sums of a small state tensor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from ..inference import Forward, InferenceConfig, predict
from ..part import DenseTaskPart
from ..transforms import EvalTransform

if TYPE_CHECKING:
    from llava_vitsplit.split import BackboneAdapter, ViTSplitPreset

    from ..datasets import DenseDataset
    from ..task import DenseTaskConfig
    from ..trainer import DenseTrainConfig


@dataclass(frozen=True)
class Sharding:
    """How evaluation splits a dataset over processes: process ``index`` of ``count`` takes every
    ``count``-th image; ``reduce_sum`` adds a tensor over processes, ``gather`` collects a list of
    Python objects from all of them (identity functions on one process)."""

    index: int = 0
    count: int = 1
    reduce_sum: Callable[[torch.Tensor], torch.Tensor] = lambda tensor: tensor
    gather: Callable[[list], list] = lambda objects: objects


class DenseTask(ABC):
    """One dense task. Subclasses set ``name`` (the one name configs, the CLI and presets use) and
    implement the abstract methods; ``register_task`` makes them available everywhere."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    """Older names that still load (from saved ``dense_task.json`` files); never written."""
    train_fields: ClassVar[frozenset[str]] = frozenset()
    """Task-specific ``DenseTrainConfig`` fields this task reads (a run that sets another one fails)."""

    # ---- the trained part's settings (``DenseTaskConfig``)

    @abstractmethod
    def part_fields(self, labels: Any) -> dict:
        """``DenseTaskConfig`` fields taken from a training set's label conventions (class names...)."""

    def part_options(self, config: DenseTrainConfig) -> dict:
        """``DenseTaskConfig.options`` taken from the training settings (default: none)."""
        return {}

    @abstractmethod
    def validate_config(self, config: DenseTaskConfig) -> None:
        """Raise ``ValueError`` when ``config`` lacks what this task's part needs."""

    # ---- model

    @abstractmethod
    def build_part(self, config: DenseTaskConfig, adapter: BackboneAdapter) -> nn.Module:
        """The trainable part over the frozen trunk; it has ``needed_hidden_states``, ``config``,
        ``vitsplit`` (its ``ViTSplitHeads``, whose task head the optimiser scales), ``task_head_parameters()``,
        ``save_pretrained(folder, state_dict)`` and ``load_weights(folder)``."""

    @abstractmethod
    def preset_head(self, preset: ViTSplitPreset, in_channels: int) -> nn.Module:
        """The head a paper preset publishes, over ``in_channels`` fused channels (for counting)."""

    # ---- data

    def check_dataset(self, dataset: DenseDataset, config: DenseTaskConfig | None = None) -> None:
        """Raise ``ValueError`` unless ``dataset`` has this task's labels (and fits ``config``'s part)."""
        if dataset.task != self.name:
            raise ValueError(f"{dataset.name} is a {dataset.task} dataset, not {self.name}")

    @abstractmethod
    def train_transform(self, config: DenseTrainConfig, labels: Any) -> Callable:
        """``(image, target, rng) -> (pixel_values, labels)`` for training samples."""

    def eval_transform(self) -> Callable:
        return EvalTransform()

    def collate(self, samples: list[dict]) -> Any:
        """A batch from dataset samples (default: stacked tensors)."""
        return default_collate(samples)

    # ---- training and evaluation

    def eval_forward(self, runner: PartRunner) -> Forward:
        """What ``evaluate`` calls: the runner itself (``pixel_values -> {"task": output}``); detection
        calls its part on a list of images instead."""
        return runner

    @abstractmethod
    def training_loss(self, runner: PartRunner, batch: Any) -> torch.Tensor:
        """The scalar loss of one micro-batch (``runner`` runs the frozen trunk and the part)."""

    @abstractmethod
    def evaluate(
        self,
        forward: Forward,
        dataset: DenseDataset,
        inference: InferenceConfig,
        *,
        output: str = "task",
        device: torch.device | str = "cpu",
        sharding: Sharding = Sharding(),
        max_images: int | None = None,
        show_progress: bool = True,
    ) -> dict:
        """Metrics of ``forward``'s output named ``output`` on ``dataset`` (every image scored once
        over the processes of ``sharding``). ``forward`` is a ``DenseModel`` (``dense eval``) or, in
        training, the ``PartRunner`` (output ``PartRunner.OUTPUT``)."""

    @abstractmethod
    def format_metrics(self, metrics: dict) -> str:
        """The metric table ``dense eval`` prints."""

    def summary(self, metrics: dict) -> dict[str, float]:
        """The scalar metrics (for progress lines)."""
        return {key: value for key, value in metrics.items() if isinstance(value, int | float)}

    # ---- prediction

    @abstractmethod
    def postprocess(self, output: Any, config: DenseTaskConfig) -> Any:
        """One image's model output -> its prediction (class ids, metres, boxes...)."""

    @abstractmethod
    def draw(self, image: np.ndarray, prediction: Any, config: DenseTaskConfig) -> tuple[str, np.ndarray]:
        """``(title, RGB panel)`` showing ``prediction`` at the size of ``image``."""

    @abstractmethod
    def raw_output(self, prediction: Any) -> np.ndarray:
        """A PNG-able array of the prediction (``dense predict --save-raw``)."""


class PartRunner:
    """The frozen trunk beside one trainable part: what a task's loss and evaluation get.

    Calling it with ``pixel_values (B, 3, H, W)`` runs the per-pixel path (pad to the patch grid, one
    trunk pass, the part, back to the input size) and returns ``{OUTPUT: output}``, so it is a
    ``Forward`` for ``inference.predict``; ``part`` and ``hidden_states`` let other parts (detection)
    run their own forward on the frozen features.
    """

    OUTPUT = "task"

    def __init__(self, adapter: BackboneAdapter, part: nn.Module, needed: frozenset[int], dtype: torch.dtype):
        self.adapter, self.part, self.needed, self.dtype = adapter, part, needed, dtype

    def hidden_states(self, pixel_values: torch.Tensor) -> dict[int, torch.Tensor]:
        from llava_vitsplit.split import frozen_hidden_states

        return frozen_hidden_states(self.adapter, pixel_values.to(self.dtype), self.needed)

    def __call__(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        from ..model import run_parts

        return run_parts(self.adapter, {self.OUTPUT: self.part}, pixel_values.to(self.dtype), self.needed)


class PixelTask(DenseTask):
    """A task predicting one map per image: ``(B, C, H, W)`` outputs at the input size."""

    activation: ClassVar[str]
    """How ``inference.predict`` averages views: ``softmax`` (class scores) or ``identity``."""

    @abstractmethod
    def build_decoder(self, config: DenseTaskConfig, in_channels: int) -> nn.Module:
        """The convolutional head on the fused ``(B, in_channels, h, w)`` map (output at 4x the grid)."""

    @abstractmethod
    def loss(self, output: torch.Tensor, labels: torch.Tensor, config: DenseTaskConfig) -> torch.Tensor:
        """Loss of ``(B, C, H, W)`` outputs against a batch of label maps."""

    @abstractmethod
    def new_metrics(self, labels: Any):
        """A metric accumulator with ``state`` (a tensor summed over processes) and ``compute()``."""

    @abstractmethod
    def update_metrics(self, metrics, output: torch.Tensor, target: torch.Tensor, labels: Any) -> None:
        """Score one image's ``(C, H, W)`` output against its label map."""

    def build_part(self, config: DenseTaskConfig, adapter: BackboneAdapter) -> nn.Module:
        return DenseTaskPart(config, adapter)

    def training_loss(self, runner: PartRunner, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        device = next(runner.part.parameters()).device
        output = runner(batch["pixel_values"].to(device, non_blocking=True))[runner.OUTPUT]
        return self.loss(output, batch["labels"].to(device, non_blocking=True), _config_of(runner.part))

    @torch.no_grad()
    def evaluate(
        self,
        forward: Forward,
        dataset: DenseDataset,
        inference: InferenceConfig,
        *,
        output: str = "task",
        device: torch.device | str = "cpu",
        sharding: Sharding = Sharding(),
        max_images: int | None = None,
        show_progress: bool = True,
    ) -> dict:
        labels = dataset.labels
        metrics = self.new_metrics(labels)
        count = len(dataset) if max_images is None else min(max_images, len(dataset))
        indices = range(sharding.index, count, sharding.count)
        for index in tqdm(indices, desc=f"eval {dataset.name}", disable=not show_progress, leave=False):
            sample = dataset[index]
            pixel_values = sample["pixel_values"].unsqueeze(0).to(device)
            prediction = predict(forward, pixel_values, inference, {output: self.activation})[output][0]
            self.update_metrics(metrics, prediction.cpu(), sample["labels"], labels)
        metrics.state = sharding.reduce_sum(metrics.state.to(device)).cpu()
        return metrics.compute()


def _config_of(part: nn.Module) -> DenseTaskConfig:
    """The part's config, through a DDP / DeepSpeed wrapper if there is one."""
    return getattr(part, "module", part).config
