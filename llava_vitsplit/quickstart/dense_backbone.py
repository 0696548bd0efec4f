"""Which backbone folder the `dense` commands use when none is given (the quick start's DINOv2-S)."""

from __future__ import annotations

from pathlib import Path

from llava_vitsplit.split import get_preset

from .weights import ensure_dinov2_small


def default_backbone_path(preset_name: str) -> Path:
    """The real DINOv2-S/14 of the CPU quick start (fetched and converted once) for ``dinov2-s`` presets;
    the other sizes have no offline copy, so they need an explicit folder."""
    preset = get_preset(preset_name)
    if preset.backbone != "dinov2-s":
        raise ValueError(
            f"preset {preset_name} uses backbone {preset.backbone}, which is not available offline: "
            "pass --backbone-path DIR (a local transformers folder, e.g. facebook/dinov2-base saved with save_pretrained)"
        )
    return ensure_dinov2_small()
