"""Dense datasets in their standard folder layouts, plus a custom folder layout."""

from .base import DenseDataset, DenseRecord, read_image, read_label
from .labels import EIGEN_CROP, DepthLabels, SegmentationLabels
from .registry import LAYOUTS, get_layout, load_dataset

__all__ = [
    "EIGEN_CROP",
    "LAYOUTS",
    "DenseDataset",
    "DenseRecord",
    "DepthLabels",
    "SegmentationLabels",
    "get_layout",
    "load_dataset",
    "read_image",
    "read_label",
]
