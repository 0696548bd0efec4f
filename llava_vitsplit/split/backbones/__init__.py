from .base import BackboneAdapter
from .clip import ClipAdapter
from .dinov2 import Dinov2Adapter
from .registry import (
    ADAPTER_FAMILIES,
    BACKBONES,
    BackboneSpec,
    adapt_backbone,
    adapter_family,
    build_backbone,
    load_backbone,
    vision_family,
)
from .siglip import SiglipAdapter

__all__ = [
    "ADAPTER_FAMILIES",
    "BACKBONES",
    "BackboneAdapter",
    "BackboneSpec",
    "ClipAdapter",
    "Dinov2Adapter",
    "SiglipAdapter",
    "adapt_backbone",
    "adapter_family",
    "build_backbone",
    "load_backbone",
    "vision_family",
]
