"""Named backbone sizes (paper Table 13), built from configs, and the adapter for a loaded model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    PreTrainedModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from .base import BackboneAdapter
from .clip import ClipAdapter
from .dinov2 import Dinov2Adapter
from .siglip import SiglipAdapter

_ADAPTERS: dict[type[nn.Module], type[BackboneAdapter]] = {
    Dinov2Model: Dinov2Adapter,
    Dinov2WithRegistersModel: Dinov2Adapter,
    CLIPVisionModel: ClipAdapter,
    SiglipVisionModel: SiglipAdapter,
}
_MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "dinov2": Dinov2Model,
    "dinov2_registers": Dinov2WithRegistersModel,
    "clip": CLIPVisionModel,
    "siglip": SiglipVisionModel,
}


@dataclass(frozen=True)
class BackboneSpec:
    """Architecture of a named backbone size; weights come from a checkpoint or random init."""

    family: str  # "dinov2", "dinov2_registers", "clip", "siglip"
    hidden_size: int
    num_layers: int
    num_heads: int
    patch_size: int
    image_size: int
    intermediate_size: int | None = None  # CLIP/SigLIP MLP width
    swiglu: bool = False  # DINOv2-G uses a SwiGLU MLP

    def hf_config(self, patch_size: int | None = None):
        patch = patch_size or self.patch_size
        common = dict(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            patch_size=patch,
            image_size=self.image_size,
        )
        if self.family == "dinov2":
            return Dinov2Config(**common, use_swiglu_ffn=self.swiglu)
        if self.family == "dinov2_registers":
            return Dinov2WithRegistersConfig(**common, use_swiglu_ffn=self.swiglu)
        if self.family == "clip":
            return CLIPVisionConfig(**common, intermediate_size=self.intermediate_size)
        if self.family == "siglip":
            return SiglipVisionConfig(**common, intermediate_size=self.intermediate_size)
        raise ValueError(f"unknown backbone family {self.family!r}")


BACKBONES: dict[str, BackboneSpec] = {
    "dinov2-s": BackboneSpec("dinov2", 384, 12, 6, 14, 518),
    "dinov2-b": BackboneSpec("dinov2", 768, 12, 12, 14, 518),
    "dinov2-l": BackboneSpec("dinov2", 1024, 24, 16, 14, 518),
    "dinov2-g": BackboneSpec("dinov2", 1536, 40, 24, 14, 518, swiglu=True),
    "dinov2-s-reg": BackboneSpec("dinov2_registers", 384, 12, 6, 14, 518),
    "dinov2-b-reg": BackboneSpec("dinov2_registers", 768, 12, 12, 14, 518),
    "clip-l-336": BackboneSpec("clip", 1024, 24, 16, 14, 336, intermediate_size=4096),
    "clip-l": BackboneSpec("clip", 1024, 24, 16, 14, 224, intermediate_size=4096),
    "siglip-so400m": BackboneSpec("siglip", 1152, 27, 16, 14, 384, intermediate_size=4304),
}


# One adapter per tower family, reachable by its name or by a vision config's model_type.
ADAPTER_FAMILIES: dict[str, type[BackboneAdapter]] = {
    adapter.family: adapter for adapter in (Dinov2Adapter, ClipAdapter, SiglipAdapter)
}
_ADAPTERS_BY_MODEL_TYPE = {
    model_type: adapter for adapter in ADAPTER_FAMILIES.values() for model_type in adapter.config_model_types
}


def vision_family(vision_config) -> str:
    """``"clip"``, ``"siglip"`` or ``"dinov2"`` for a tower config; other towers are an error."""
    adapter = _ADAPTERS_BY_MODEL_TYPE.get(vision_config.model_type)
    if adapter is None:
        raise ValueError(
            f"vision_config.model_type={vision_config.model_type!r} has no ViT-Split adapter; "
            f"supported: {sorted(_ADAPTERS_BY_MODEL_TYPE)}"
        )
    return adapter.family


def adapter_family(family: str) -> type[BackboneAdapter]:
    """The adapter class of a tower family (``"clip"``, ``"siglip"``, ``"dinov2"``)."""
    if family not in ADAPTER_FAMILIES:
        raise ValueError(f"unknown tower family {family!r}; choose one of {sorted(ADAPTER_FAMILIES)}")
    return ADAPTER_FAMILIES[family]


def adapt_backbone(model: nn.Module, **options) -> BackboneAdapter:
    """Wrap a transformers vision model in the adapter for its family (``options``: the adapter's own
    settings, e.g. DINOv2's ``position_interpolation``)."""
    for model_type, adapter in _ADAPTERS.items():
        if isinstance(model, model_type):
            try:
                return adapter(model, **options)
            except TypeError as error:
                raise ValueError(f"the {adapter.__name__} takes no option(s) {sorted(options)}") from error
    supported = ", ".join(t.__name__ for t in _ADAPTERS)
    raise TypeError(f"no ViT-Split adapter for {type(model).__name__}; supported: {supported}")


def build_backbone(
    name: str, *, patch_size: int | None = None, device: str | torch.device | None = None
) -> PreTrainedModel:
    """A randomly initialised backbone of a named size (use ``device="meta"`` to count parameters
    without allocating them)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    spec = BACKBONES[name]
    with torch.device(device or "cpu"):
        return _MODEL_CLASSES[spec.family](spec.hf_config(patch_size))


def load_backbone(path: str | Path, **kwargs) -> PreTrainedModel:
    """Load a vision backbone from a local transformers folder.

    A full CLIP/SigLIP checkpoint (text + vision) loads its vision tower only.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a transformers model folder (no config.json)")
    config = AutoConfig.from_pretrained(path)
    if config.model_type == "clip":
        return CLIPVisionModel.from_pretrained(path, **kwargs)
    if config.model_type == "siglip":
        return SiglipVisionModel.from_pretrained(path, **kwargs)
    model = AutoModel.from_pretrained(path, **kwargs)
    adapt_backbone(model)  # fail early on an unsupported architecture
    return model
