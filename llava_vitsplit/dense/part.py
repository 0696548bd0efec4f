"""A trained task part of a per-pixel task: ViT-Split's trainable heads plus the task's decoder.

Saved as ``dense_task.json`` (its ``DenseTaskConfig``) and ``model.safetensors`` (its weights only,
never the backbone's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file
from torch import nn

from llava_vitsplit.safe_files import read_safetensors
from llava_vitsplit.split import BackboneAdapter, ViTSplitHeads

if TYPE_CHECKING:
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
        self.decoder = config.dense_task.build_decoder(config, split.resolved_fusion_width)

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
        return save_part(self, folder, state_dict)

    def load_weights(self, folder: str | Path) -> None:
        load_part_weights(self, folder)


def save_part(part: nn.Module, folder: str | Path, state_dict: Mapping[str, torch.Tensor] | None = None) -> Path:
    """Write ``dense_task.json`` (``part.config``) and ``model.safetensors`` (the part only, never the backbone)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    part.config.save(folder)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in (state_dict or part.state_dict()).items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "task": part.config.task})
    return folder


def load_part_weights(part: nn.Module, folder: str | Path) -> None:
    """Load ``model.safetensors`` into ``part``; missing, unexpected or mis-shaped tensors are named."""
    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {WEIGHTS_FILE}")
    state = read_safetensors(path)  # a truncated file is named as such
    expected = part.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: missing tensors {missing[:5]}, unexpected tensors {unexpected[:5]}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ValueError(
                f"{path}: tensor {key} has shape {tuple(tensor.shape)}, the part expects {tuple(expected[key].shape)}"
            )
    part.load_state_dict(state)
