"""Reading weights from checkpoint files safely: safetensors, or pickles with ``weights_only=True``.

A pickle (``.bin``/``.pt``/``.pth``) is only ever opened with ``torch.load(weights_only=True)``, which
refuses anything but tensors and plain containers, so a malicious file cannot run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from llava_vitsplit.safe_files import PICKLE_SUFFIXES, read_pickled_weights, read_safetensors

# Single files and sharded indices, in the order transformers and LLaVA write them.
_SINGLE = ("model.safetensors", "pytorch_model.bin")
_INDICES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def read_tensor_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of one ``.safetensors`` file or one pickled state dict (read with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    if path.suffix not in PICKLE_SUFFIXES:
        raise ValueError(f"{path}: unknown weights format (expected .safetensors or one of {PICKLE_SUFFIXES})")
    return read_pickled_weights(path)


def checkpoint_files(folder: str | os.PathLike) -> list[Path]:
    """The weight files of a (possibly sharded) checkpoint folder; safetensors preferred."""
    folder = Path(folder)
    for name in _INDICES:
        index = folder / name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [shard for shard in shards if not (folder / shard).is_file()]
            if missing:
                raise FileNotFoundError(f"{index} lists shard(s) missing from {folder}: {missing}")
            return [folder / shard for shard in shards]
    for name in _SINGLE:
        if (folder / name).is_file():
            return [folder / name]
    raise FileNotFoundError(
        f"no weights in {folder}: expected one of {list(_SINGLE)} or a sharded index {list(_INDICES)}"
    )


def read_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint folder, merged across shards."""
    state: dict[str, torch.Tensor] = {}
    for path in checkpoint_files(folder):
        state.update(read_tensor_file(path))
    return state


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or ``None`` when there is no such file; a bad file names itself."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data
