"""Dataset layouts by name, and the one entry point that builds a dataset from a folder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import ade20k, cityscapes, folder, nyu, pascal_context
from .base import DenseDataset


def _load_coco(root: Path, split: str, **kwargs):
    from ..detection.dataset import load_coco  # detection pulls in pycocotools: only when asked for

    return load_coco(root, split, **kwargs)


@dataclass(frozen=True)
class DatasetLayout:
    name: str
    task: str | None  # None: decided by the folder's contents (custom folder datasets)
    splits: dict[str, str]
    records: Callable | None
    accepts_options: bool = False
    dataset: Callable | None = None
    """A layout with its own dataset class (COCO instances): ``dataset(root, split, transform=, seed=)``."""


LAYOUTS: dict[str, DatasetLayout] = {
    "ade20k": DatasetLayout("ade20k", "segmentation", ade20k.SPLITS, ade20k.records),
    "cityscapes": DatasetLayout("cityscapes", "segmentation", cityscapes.SPLITS, cityscapes.records),
    "pascal-context": DatasetLayout(
        "pascal-context", "segmentation", pascal_context.SPLITS, pascal_context.records
    ),
    "nyu": DatasetLayout("nyu", "depth", nyu.SPLITS, nyu.records),
    "folder": DatasetLayout("folder", None, folder.SPLITS, folder.records, accepts_options=True),
    "coco": DatasetLayout("coco", "detection", {"train": "train", "val": "val"}, None, dataset=_load_coco),
}


def get_layout(name: str) -> DatasetLayout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown dataset layout {name!r}; choose one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def load_dataset(
    name: str,
    root: str | Path,
    split: str,
    *,
    transform: Callable | None = None,
    seed: int = 0,
    **options,
) -> DenseDataset:
    """A dataset in layout ``name`` under ``root``; ``split`` is ``train`` or ``val`` (``test`` where
    the layout has one). ``options`` (num_classes, reduce_zero_label, depth_scale, min_depth,
    max_depth) apply to ``folder`` datasets only: the public datasets fix their own conventions."""
    layout = get_layout(name)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{name} data root {root} does not exist or is not a folder")
    if split not in layout.splits:
        raise ValueError(f"{name} has no split {split!r}; choose one of {sorted(layout.splits)}")
    given = {key: value for key, value in options.items() if value is not None}
    if given and not layout.accepts_options:
        raise ValueError(
            f"{name} fixes its own label conventions; options {sorted(given)} apply to folder datasets"
        )
    if layout.dataset is not None:
        return layout.dataset(root, split, transform=transform, seed=seed, **given)
    records, labels = layout.records(root, split, **given)
    return DenseDataset(records, labels, transform, name=f"{name}:{split}", seed=seed)
