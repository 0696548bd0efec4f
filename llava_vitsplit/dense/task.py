"""What a trained task part is: its task, split hyper-parameters, label space and inference setting.

Saved as ``dense_task.json`` beside the part's weights, so ``dense eval`` / ``dense predict`` can
rebuild it over a backbone without the training command line. ``task`` is a registered task name
(``dense.tasks``); older aliases in saved files load as the task's one name. The task validates the
fields it uses; ``options`` holds settings of tasks that need more than the shared fields.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from llava_vitsplit.split import ViTSplitConfig

from .inference import InferenceConfig
from .tasks import DenseTask, canonical_task_name, get_task

CONFIG_FILE = "dense_task.json"


@dataclass(frozen=True)
class DenseTaskConfig:
    task: str
    split: dict
    """``ViTSplitConfig`` fields (the backbone's L and D included)."""
    class_names: tuple[str, ...] | None = None
    ignore_index: int = 255
    min_depth: float = 1e-3
    max_depth: float = 10.0
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    preset: str | None = None
    dataset: str | None = None
    backbone: str | None = None
    """The backbone folder it was trained over (a default for loading; any same-shaped one works)."""
    position_interpolation: str | None = None
    """The trunk's DINOv2 position-embedding resize the part was trained with (``None``: the library's
    own; ``"dinov2"``: the original DINOv2's, see ``split.backbones.dinov2``)."""
    options: dict = field(default_factory=dict)
    """Task-specific settings beyond the shared fields (JSON values; the task validates them)."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "task", canonical_task_name(self.task))
        except ValueError as error:
            raise ValueError(f"DenseTaskConfig.task: {error}") from error
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
        self.dense_task.validate_config(self)
        self.split_config()  # validates the split fields now

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names else None

    @property
    def dense_task(self) -> DenseTask:
        """The task's behaviour (decoder, loss, metrics...) from the registry."""
        return get_task(self.task)

    def split_config(self) -> ViTSplitConfig:
        fields = dict(self.split)
        if fields.get("prior_layer_ids") is not None:
            fields["prior_layer_ids"] = tuple(fields["prior_layer_ids"])
        return ViTSplitConfig(**fields)

    @classmethod
    def from_split_config(cls, task: str, split: ViTSplitConfig, **fields) -> DenseTaskConfig:
        return cls(task=task, split=dataclasses.asdict(split), **fields)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["inference"] = self.inference.to_dict()
        data["class_names"] = list(self.class_names) if self.class_names else None
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> DenseTaskConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown dense task field(s) {unknown}; known: {sorted(known)}")
        data = dict(data)
        try:
            data["inference"] = InferenceConfig(**data.get("inference") or {})
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: {error}") from error

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> DenseTaskConfig:
        path = Path(folder) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder} is not a trained dense task part (no {CONFIG_FILE})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON ({error})") from error
        return cls.from_dict(data, str(path))
