"""What a trained task part is: its task, split hyper-parameters, label space and inference setting.

Saved as ``dense_task.json`` beside the part's weights, so ``dense eval`` / ``dense predict`` can
rebuild it over a backbone without the training command line.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from llava_vitsplit.split import ViTSplitConfig

from .inference import InferenceConfig

CONFIG_FILE = "dense_task.json"
TASKS = ("segmentation", "depth")
SHORT_NAMES = {"segmentation": "seg", "depth": "depth"}


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

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"DenseTaskConfig.task = {self.task!r}: choose one of {TASKS}")
        if self.task == "segmentation":
            if not self.class_names:
                raise ValueError("DenseTaskConfig: a segmentation part needs class_names")
            object.__setattr__(self, "class_names", tuple(self.class_names))
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(
                f"DenseTaskConfig: need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}"
            )
        self.split_config()  # validates the split fields now

    @property
    def num_classes(self) -> int | None:
        return len(self.class_names) if self.class_names else None

    @property
    def short_name(self) -> str:
        return SHORT_NAMES[self.task]

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
