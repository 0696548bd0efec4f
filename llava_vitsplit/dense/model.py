"""Task parts over one frozen trunk: each part is ViT-Split's trainable heads plus a dense decoder.

``DenseModel`` holds one frozen backbone and any number of parts. Its forward runs the trunk once,
only as deep as the deepest hidden state any requested part needs, and feeds every part from that
single pass (the multi-task inference of the paper's Fig. 7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from llava_vitsplit.safe_files import read_safetensors
from llava_vitsplit.split import (
    BackboneAdapter,
    FrozenTrunk,
    ViTSplitHeads,
    frozen_hidden_states,
    load_backbone,
)

from .heads import build_decoder
from .task import DenseTaskConfig

WEIGHTS_FILE = "model.safetensors"


class DenseTaskPart(nn.Module):
    """Task head + prior head + fusion net (``vitsplit``) and the task's decoder. Trainable as a whole.

    ``forward(hidden_states, grid)`` returns the decoder output at 4x the patch grid.
    """

    def __init__(self, config: DenseTaskConfig, adapter: BackboneAdapter) -> None:
        super().__init__()
        self.config = config
        split = config.split_config()
        self.vitsplit = ViTSplitHeads(split, adapter)
        self.decoder = build_decoder(
            config.task,
            split.resolved_fusion_width,
            num_classes=config.num_classes,
            min_depth=config.min_depth,
        )

    @property
    def needed_hidden_states(self) -> frozenset[int]:
        return self.config.split_config().needed_hidden_states

    def forward(self, hidden_states: Mapping[int, torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        return self.decoder(self.vitsplit(hidden_states, grid))

    def task_head_parameters(self) -> Iterable[nn.Parameter]:
        """The blocks copied from the backbone: trained at a tenth of the learning rate."""
        return self.vitsplit.task_head.parameters()

    def save_pretrained(
        self, folder: str | Path, state_dict: Mapping[str, torch.Tensor] | None = None
    ) -> Path:
        """Write ``dense_task.json`` and ``model.safetensors`` (the part only, never the backbone)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save(folder)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in (state_dict or self.state_dict()).items()}
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "task": self.config.task})
        return folder

    def load_weights(self, folder: str | Path) -> None:
        path = Path(folder) / WEIGHTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{folder}: no {WEIGHTS_FILE}")
        state = read_safetensors(path)  # a truncated file is named as such
        expected = self.state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{path}: missing tensors {missing[:5]}, unexpected tensors {unexpected[:5]}")
        for key, tensor in state.items():
            if tensor.shape != expected[key].shape:
                raise ValueError(
                    f"{path}: tensor {key} has shape {tuple(tensor.shape)}, the part expects {tuple(expected[key].shape)}"
                )
        self.load_state_dict(state)


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


class DenseModel(nn.Module):
    """One frozen backbone and named task parts (``{"seg": ..., "depth": ...}``)."""

    def __init__(self, backbone: nn.Module, tasks: Mapping[str, DenseTaskConfig] | None = None) -> None:
        super().__init__()
        self.trunk = FrozenTrunk(backbone)
        self.parts = nn.ModuleDict()
        for name, config in (tasks or {}).items():
            self.add_task(name, config)

    @property
    def adapter(self) -> BackboneAdapter:
        return self.trunk.adapter

    def add_task(self, name: str, config: DenseTaskConfig) -> DenseTaskPart:
        if name in self.parts:
            raise ValueError(f"DenseModel already has a task named {name!r}")
        part = DenseTaskPart(config, self.adapter)
        param = next(self.trunk.parameters())
        self.parts[name] = part.to(device=param.device, dtype=param.dtype)
        return part

    def _select(self, tasks: Iterable[str] | None) -> dict[str, DenseTaskPart]:
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

    def activations(self, tasks: Iterable[str] | None = None) -> dict[str, str]:
        """How ``inference.predict`` combines each task's outputs."""
        return {
            name: "softmax" if part.config.task == "segmentation" else "identity"
            for name, part in self._select(tasks).items()
        }

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
        model = cls(backbone.to(device) if device is not None else backbone)
        for name, folder in parts.items():
            model.add_task(name, configs[name]).load_weights(folder)
        return model.eval()
