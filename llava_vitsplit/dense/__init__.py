"""Dense prediction tasks (segmentation, depth; ``dense.tasks`` registers them) on the shared ViT-Split module.

One frozen backbone, any number of trained task parts (ViT-Split heads + a decoder each), one trunk
pass for all of them::

    from llava_vitsplit.dense import DenseModel
    model = DenseModel.from_pretrained(
        {"segmentation": "runs/ade20k-s/final", "depth": "runs/nyu-s/final"}, "dinov2-small/"
    )
    outputs = model(pixel_values)  # {"segmentation": (B, 150, H, W) logits, "depth": (B, 1, H, W) metres}
"""

from .datasets import DenseDataset, DepthLabels, SegmentationLabels, load_dataset
from .evaluation import evaluate
from .heads import DepthHead, SegmentationHead
from .inference import InferenceConfig, predict
from .metrics import DepthMetrics, SegmentationMetrics
from .model import DenseModel, run_parts
from .part import DenseTaskPart
from .recipes import RECIPES, DenseRecipe, get_recipe
from .task import DenseTaskConfig
from .tasks import DenseTask, PixelTask, get_task, register_task, task_names
from .trainer import DenseTrainConfig, TrainResult, train

__all__ = [
    "RECIPES",
    "DenseDataset",
    "DenseModel",
    "DenseRecipe",
    "DenseTask",
    "DenseTaskConfig",
    "DenseTaskPart",
    "DenseTrainConfig",
    "DepthHead",
    "DepthLabels",
    "DepthMetrics",
    "InferenceConfig",
    "PixelTask",
    "SegmentationHead",
    "SegmentationLabels",
    "SegmentationMetrics",
    "TrainResult",
    "evaluate",
    "get_recipe",
    "get_task",
    "load_dataset",
    "predict",
    "register_task",
    "run_parts",
    "task_names",
    "train",
]
