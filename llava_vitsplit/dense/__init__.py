"""Dense prediction (segmentation, depth) on the shared ViT-Split module.

One frozen backbone, any number of trained task parts (ViT-Split heads + a decoder each), one trunk
pass for all of them::

    from llava_vitsplit.dense import DenseModel
    model = DenseModel.from_pretrained({"seg": "runs/ade20k-s/final", "depth": "runs/nyu-s/final"}, "dinov2-small/")
    outputs = model(pixel_values)          # {"seg": (B, 150, H, W) logits, "depth": (B, 1, H, W) metres}
"""

from .datasets import DenseDataset, DepthLabels, SegmentationLabels, load_dataset
from .evaluation import evaluate
from .heads import DepthHead, SegmentationHead, build_decoder
from .inference import InferenceConfig, predict
from .metrics import DepthMetrics, SegmentationMetrics
from .model import DenseModel, DenseTaskPart, run_parts
from .recipes import RECIPES, DenseRecipe, get_recipe
from .task import DenseTaskConfig
from .trainer import DenseTrainConfig, TrainResult, train

__all__ = [
    "RECIPES",
    "DenseDataset",
    "DenseModel",
    "DenseRecipe",
    "DenseTaskConfig",
    "DenseTaskPart",
    "DenseTrainConfig",
    "DepthHead",
    "DepthLabels",
    "DepthMetrics",
    "InferenceConfig",
    "SegmentationHead",
    "SegmentationLabels",
    "SegmentationMetrics",
    "TrainResult",
    "build_decoder",
    "evaluate",
    "get_recipe",
    "load_dataset",
    "predict",
    "run_parts",
    "train",
]
