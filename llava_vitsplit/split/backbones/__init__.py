from .base import BackboneAdapter
from .clip import ClipAdapter
from .dinov2 import Dinov2Adapter
from .registry import BACKBONES, BackboneSpec, adapt_backbone, build_backbone, load_backbone
from .siglip import SiglipAdapter

__all__ = [
    "BACKBONES",
    "BackboneAdapter",
    "BackboneSpec",
    "ClipAdapter",
    "Dinov2Adapter",
    "SiglipAdapter",
    "adapt_backbone",
    "build_backbone",
    "load_backbone",
]
