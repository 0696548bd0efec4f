"""Task parts over one frozen trunk: each part is ViT-Split's trainable heads plus a dense decoder.

``DenseModel`` holds one frozen backbone and any number of parts. Its forward runs the trunk once,
only as deep as the deepest hidden state any requested part needs, and feeds every part from that
single pass (the multi-task inference of the paper's Fig. 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from llava_vitsplit.split import BackboneAdapter, FrozenTrunk, frozen_hidden_states, load_backbone

from .task import DenseTaskConfig
from .tasks import PartRunner


def pad_to_patch_multiple(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Zero-pad bottom/right so every pixel lies in a patch (0 is the mean colour once normalised)."""
    height, width = pixel_values.shape[-2:]
    pad_h, pad_w = -height % patch_size, -width % patch_size
    if pad_h or pad_w:
        pixel_values = F.pad(pixel_values, (0, pad_w, 0, pad_h))
    return pixel_values


def to_input_size(output: torch.Tensor, padded_size: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Decoder output -> the padded input's size (bilinear) -> crop the padding away."""
    output = F.interpolate(output, size=tuple(padded_size), mode="bilinear", align_corners=False)
    return output[..., : size[0], : size[1]]


def run_parts(
    adapter: BackboneAdapter,
    parts: Mapping[str, nn.Module],
    pixel_values: torch.Tensor,
    needed: Iterable[int],
) -> dict[str, torch.Tensor]:
    """One frozen trunk pass (no autograd) feeding every part; outputs at the input's size."""
    size = tuple(pixel_values.shape[-2:])
    padded = pad_to_patch_multiple(pixel_values, adapter.patch_size)
    grid = adapter.grid_size(*padded.shape[-2:])
    hidden_states = frozen_hidden_states(adapter, padded, needed)
    return {
        name: to_input_size(part(hidden_states, grid), padded.shape[-2:], size)
        for name, part in parts.items()
    }


def trunk_options(position_interpolation: str | None) -> dict:
    """``FrozenTrunk`` adapter options: none unless a position interpolation is asked for."""
    return {} if position_interpolation is None else {"position_interpolation": position_interpolation}


class DenseModel(nn.Module):
    """One frozen backbone and named task parts (``{"segmentation": ..., "depth": ...}``)."""

    def __init__(
        self,
        backbone: nn.Module,
        tasks: Mapping[str, DenseTaskConfig] | None = None,
        *,
        position_interpolation: str | None = None,
    ) -> None:
        """``position_interpolation``: the DINOv2 position-embedding resize of the trunk (``None``: the
        library's own); every part must have been trained with the same."""
        super().__init__()
        self.position_interpolation = position_interpolation
        self.trunk = FrozenTrunk(backbone, **trunk_options(position_interpolation))
        self.parts = nn.ModuleDict()
        for name, config in (tasks or {}).items():
            self.add_task(name, config)

    @property
    def adapter(self) -> BackboneAdapter:
        return self.trunk.adapter

    def add_task(self, name: str, config: DenseTaskConfig) -> nn.Module:
        if name in self.parts:
            raise ValueError(f"DenseModel already has a task named {name!r}")
        if config.position_interpolation != self.position_interpolation:
            raise ValueError(
                f"part {name!r} was trained with position_interpolation={config.position_interpolation!r}, "
                f"this model's trunk uses {self.position_interpolation!r}: parts sharing a trunk pass must agree"
            )
        part = config.dense_task.build_part(config, self.adapter)
        param = next(self.trunk.parameters())
        self.parts[name] = part.to(device=param.device, dtype=param.dtype)
        return part

    def _select(self, tasks: Iterable[str] | None) -> dict[str, nn.Module]:
        names = list(self.parts) if tasks is None else list(tasks)
        unknown = [name for name in names if name not in self.parts]
        if unknown or not names:
            raise ValueError(f"unknown or no task(s) {unknown or names}; this model has {list(self.parts)}")
        return {name: self.parts[name] for name in names}

    def needed_hidden_states(self, tasks: Iterable[str] | None = None) -> frozenset[int]:
        """The union over the parts: what one shared trunk pass must compute."""
        return frozenset().union(*(part.needed_hidden_states for part in self._select(tasks).values()))

    def forward(
        self, pixel_values: torch.Tensor, tasks: Iterable[str] | None = None
    ) -> dict[str, torch.Tensor]:
        """``{task: output}`` at the input's size: segmentation logits ``(B, C, H, W)``, depth ``(B, 1, H, W)``."""
        parts = self._select(tasks)
        return run_parts(self.adapter, parts, pixel_values, self.needed_hidden_states(parts))

    def runner(self, name: str) -> PartRunner:
        """The trunk beside one part, as training and ``DenseTask.evaluate`` use it."""
        part = self._select([name])[name]
        return PartRunner(self.adapter, part, part.needed_hidden_states, next(part.parameters()).dtype)

    def activations(self, tasks: Iterable[str] | None = None) -> dict[str, str]:
        """How ``inference.predict`` combines each task's outputs."""
        return {name: part.config.dense_task.activation for name, part in self._select(tasks).items()}

    @classmethod
    def from_pretrained(
        cls,
        parts: Mapping[str, str | Path],
        backbone: str | Path | nn.Module | None = None,
        *,
        device: str | torch.device | None = None,
    ) -> DenseModel:
        """Trained part folders over one backbone: a model, a folder, or (``None``) the folder the parts
        were trained over, which must then be the same for all of them."""
        if not parts:
            raise ValueError("DenseModel.from_pretrained needs at least one part folder")
        configs = {name: DenseTaskConfig.load(folder) for name, folder in parts.items()}
        if backbone is None:
            recorded = {config.backbone for config in configs.values()}
            if len(recorded) != 1 or None in recorded:
                raise ValueError(
                    f"the parts were trained over different or unrecorded backbones {sorted(map(str, recorded))}; "
                    "pass the backbone folder explicitly"
                )
            backbone = recorded.pop()
        if not isinstance(backbone, nn.Module):
            backbone = load_backbone(backbone)
        interpolations = {config.position_interpolation for config in configs.values()}
        if len(interpolations) != 1:
            raise ValueError(
                f"the parts were trained with different position interpolations {sorted(map(str, interpolations))}: "
                "they cannot share one trunk pass"
            )
        backbone = backbone.to(device) if device is not None else backbone
        model = cls(backbone, position_interpolation=interpolations.pop())
        for name, folder in parts.items():
            model.add_task(name, configs[name]).load_weights(folder)
        return model.eval()
