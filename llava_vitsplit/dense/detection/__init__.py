"""Detection and instance segmentation: Mask R-CNN (torchvision) on the ViT-Split fused map.

The task's registry entry is ``dense.tasks.detection``; ``dense train --preset coco-s`` trains it
through the shared loop. Standalone::

    from llava_vitsplit.dense.detection import vitsplit_maskrcnn
    model = vitsplit_maskrcnn("coco-s", 80, backbone="dinov2-small/")   # patch-14 DINOv2 re-patched to 16
    model.eval(); detections = model([image])                            # [{boxes, labels, scores, masks}]
"""

from .coco import CocoFormatError, CocoInstances, CocoLoadReport
from .config import DetectionOptions
from .dataset import CocoDetectionDataset, DetectionLabels, collate, load_coco, train_transforms
from .evaluation import coco_metrics, predict_records, to_coco_results, write_results
from .model import DetectionPart, ViTSplitMaskRCNN, vitsplit_maskrcnn
from .multitask import detect_with_dense_parts, shared_pass_problems
from .neck import SimpleFeaturePyramid, ViTSplitFPNBackbone

__all__ = [
    "CocoDetectionDataset",
    "CocoFormatError",
    "CocoInstances",
    "CocoLoadReport",
    "DetectionLabels",
    "DetectionOptions",
    "DetectionPart",
    "SimpleFeaturePyramid",
    "ViTSplitFPNBackbone",
    "ViTSplitMaskRCNN",
    "coco_metrics",
    "collate",
    "detect_with_dense_parts",
    "load_coco",
    "predict_records",
    "shared_pass_problems",
    "to_coco_results",
    "train_transforms",
    "vitsplit_maskrcnn",
    "write_results",
]
