"""ViT-Split: a frozen ViT trunk plus a trainable task head, prior head and fusion net.

This subpackage imports nothing else from ``llava_vitsplit``: the LLaVA projector and the dense
heads are both built on it.
"""

from .backbones import (
    BACKBONES,
    BackboneAdapter,
    adapt_backbone,
    adapter_family,
    build_backbone,
    load_backbone,
    vision_family,
)
from .config import ViTSplitConfig
from .convs import ConvFusion, DeformableConv3x3
from .deform_conv import DeformConv2d, deform_conv2d
from .heads import ViTSplitHeads
from .presets import PRESETS, ViTSplitPreset, get_preset, list_presets
from .selection import SparseLayerGate, uniform_layer_ids
from .trunk import FrozenTrunk, frozen_hidden_states
from .vitsplit import ViTSplit, config_for_backbone

__all__ = [
    "BACKBONES",
    "PRESETS",
    "BackboneAdapter",
    "ConvFusion",
    "DeformConv2d",
    "DeformableConv3x3",
    "FrozenTrunk",
    "SparseLayerGate",
    "ViTSplit",
    "ViTSplitConfig",
    "ViTSplitHeads",
    "ViTSplitPreset",
    "adapt_backbone",
    "adapter_family",
    "build_backbone",
    "config_for_backbone",
    "deform_conv2d",
    "frozen_hidden_states",
    "get_preset",
    "list_presets",
    "load_backbone",
    "uniform_layer_ids",
    "vision_family",
]
