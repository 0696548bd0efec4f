"""Detection and instance segmentation: Mask R-CNN (torchvision) on the ViT-Split fused map.

::

    from llava_vitsplit.dense.detection import vitsplit_maskrcnn
    model = vitsplit_maskrcnn("coco-s", 80, backbone="dinov2-small/")   # patch-14 DINOv2 re-patched to 16
    model.eval(); detections = model([image])                            # [{boxes, labels, scores, masks}]
"""

from .coco import CocoFormatError, CocoInstances, CocoLoadReport
from .config import DetectionConfig
from .dataset import CocoDetectionDataset, collate, train_transforms
from .evaluation import coco_metrics, evaluate_detection, predict_dataset, to_coco_results
from .model import ViTSplitMaskRCNN, vitsplit_maskrcnn
from .neck import SimpleFeaturePyramid, ViTSplitFPNBackbone
from .optim import build_optimizer, build_scheduler, parameter_groups
from .training import DetectionTrainConfig, DetectionTrainer, DetectionTrainResult, train_detection

__all__ = [
    "CocoDetectionDataset",
    "CocoFormatError",
    "CocoInstances",
    "CocoLoadReport",
    "DetectionConfig",
    "DetectionTrainConfig",
    "DetectionTrainResult",
    "DetectionTrainer",
    "SimpleFeaturePyramid",
    "ViTSplitFPNBackbone",
    "ViTSplitMaskRCNN",
    "build_optimizer",
    "build_scheduler",
    "coco_metrics",
    "collate",
    "evaluate_detection",
    "parameter_groups",
    "predict_dataset",
    "to_coco_results",
    "train_detection",
    "train_transforms",
    "vitsplit_maskrcnn",
]
