"""The task registry: one name per task, old part files keep loading, and a new task trains through
the same loop as the built-in ones."""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from llava_vitsplit.dense.datasets import LAYOUTS, get_layout
from llava_vitsplit.dense.datasets.registry import DatasetLayout
from llava_vitsplit.dense.model import DenseModel
from llava_vitsplit.dense.task import DenseTaskConfig
from llava_vitsplit.dense.tasks import TASKS, PixelTask, get_task, register_task, task_names
from llava_vitsplit.dense.trainer import train
from llava_vitsplit.dense.transforms import SegmentationTrainTransform

from .conftest import tiny_config, tiny_dinov2, write_segmentation_folder

FIXTURES = Path(__file__).parent / "fixtures"


def test_every_built_in_task_has_one_name_and_old_names_resolve_to_it():
    assert {"segmentation", "depth"} <= set(task_names())
    assert get_task("seg") is get_task("linear-seg") is get_task("segmentation")
    with pytest.raises(ValueError, match="unknown dense task 'normals'"):
        get_task("normals")
    with pytest.raises(ValueError, match="already registered"):
        register_task(type(get_task("depth")))


@pytest.mark.parametrize(
    "folder, task", [("v1_segmentation_part", "segmentation"), ("v1_depth_part", "depth")]
)
def test_part_configs_written_before_the_task_registry_still_load_and_build(folder, task, backbone):
    """The fixtures are ``dense_task.json`` files written by the code before ``dense.tasks`` existed."""
    config = DenseTaskConfig.load(FIXTURES / folder)
    assert config.task == task and config.dense_task is get_task(task)
    part = DenseModel(backbone).add_task(task, config)
    assert part.needed_hidden_states == config.split_config().needed_hidden_states
    if task == "segmentation":
        assert config.class_names == ("dark", "bright") and config.inference.mode == "slide"
        assert part.decoder.classifier.out_channels == 2


def test_a_part_saved_under_an_old_alias_loads_under_the_tasks_one_name(tmp_path):
    data = json.loads((FIXTURES / "v1_segmentation_part" / "dense_task.json").read_text())
    (tmp_path / "dense_task.json").write_text(json.dumps(data | {"task": "seg"}))
    config = DenseTaskConfig.load(tmp_path)
    assert config.task == "segmentation"
    assert json.loads(config.save(tmp_path / "again").read_text())["task"] == "segmentation"


# ---- a fourth task, defined here only: foreground probability per pixel


@dataclass(frozen=True)
class ForegroundLabels:
    """Reads the segmentation folder's masks: class 1 is foreground."""

    ignore_index: int = 255

    @property
    def task(self) -> str:
        return "foreground"

    def decode(self, raw: np.ndarray, source: str) -> np.ndarray:
        return (raw == 1).astype(np.uint8)


class ForegroundMetrics:
    def __init__(self) -> None:
        self.state = torch.zeros(3, dtype=torch.float64)  # true positives, false positives, false negatives

    def update(self, probability: torch.Tensor, target: torch.Tensor) -> None:
        predicted, actual = probability > 0.5, target == 1
        self.state += torch.stack(
            [(predicted & actual).sum(), (predicted & ~actual).sum(), (~predicted & actual).sum()]
        )

    def compute(self) -> dict:
        hits, false_positives, misses = self.state.tolist()
        return {"fg_iou": 100 * hits / max(hits + false_positives + misses, 1)}


class ForegroundTask(PixelTask):
    name = "foreground"
    activation = "identity"

    def part_fields(self, labels) -> dict:
        return {"ignore_index": labels.ignore_index}

    def validate_config(self, config) -> None:
        pass

    def build_decoder(self, config, in_channels):
        return nn.Sequential(nn.Upsample(scale_factor=4), nn.Conv2d(in_channels, 1, 1), nn.Sigmoid())

    def preset_head(self, preset, in_channels):
        return nn.Conv2d(in_channels, 1, 1)

    def train_transform(self, config, labels):
        return SegmentationTrainTransform(
            config.crop_size, photometric=False, ignore_index=labels.ignore_index
        )

    def loss(self, output, labels, config):
        valid = labels != config.ignore_index
        return F.binary_cross_entropy(output[:, 0][valid].float(), labels[valid].float())

    def new_metrics(self, labels):
        return ForegroundMetrics()

    def update_metrics(self, metrics, output, target, labels):
        metrics.update(output[0], target)

    def format_metrics(self, metrics):
        return f"foreground IoU {metrics['fg_iou']:.2f}"

    def postprocess(self, output, config):
        return output[0].numpy()

    def draw(self, image, prediction, config):
        return "foreground", np.repeat((prediction * 255).astype(np.uint8)[..., None], 3, axis=2)

    def raw_output(self, prediction):
        return (prediction * 255).astype(np.uint8)


@pytest.fixture
def foreground_task(monkeypatch):
    def records(root, split):
        base = get_layout("folder").records(root, split)[0]
        return base, ForegroundLabels()

    monkeypatch.setitem(
        LAYOUTS,
        "foreground-folder",
        DatasetLayout("foreground-folder", "foreground", {"train": "train", "val": "val"}, records),
    )
    register_task(ForegroundTask)
    yield TASKS["foreground"]
    del TASKS["foreground"]


def test_a_task_registered_outside_the_package_trains_evaluates_and_reloads(foreground_task, tmp_path):
    data = write_segmentation_folder(tmp_path / "data")
    backbone = tiny_dinov2()
    config = tiny_config(
        "ade20k-s", data, tmp_path / "run", task="foreground", dataset="foreground-folder", eval_interval=2
    )
    result = train(config, backbone=backbone)
    assert [e["iter"] for e in result.evaluations] == [2, 4]
    assert 0 <= result.evaluations[-1]["metrics"]["fg_iou"] <= 100
    losses = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in losses if "loss" in r)
    assert (tmp_path / "run" / "checkpoints" / "checkpoint_4" / "part" / "dense_task.json").is_file()
    model = DenseModel.from_pretrained({"fg": result.final_dir}, backbone)
    assert model.parts["fg"].config.task == "foreground" and model.activations() == {"fg": "identity"}
    output = model(torch.randn(1, 3, 40, 48))["fg"]
    assert output.shape == (1, 1, 40, 48) and ((0 <= output) & (output <= 1)).all()
