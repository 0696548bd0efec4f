"""`--vision_feature_cache DIR`: the frozen tower's hidden states, computed once and read back.

LLaVA applies no random augmentation and the tower is frozen in both stages, so the hidden states
the projector reads (ViT-Split's prior and task-head inputs, the MLP's selected layer) are the same
in every epoch and in stage 2 as in stage 1. This cache sits where the model asks the tower for
them (`LlavaViTSplitModel.get_image_features`), one image at a time, so it serves any batch
composition, both stages and records with several images, and the data pipeline is untouched.

Why nothing stale can be read: an entry's file name is the sha256 of the *processed* pixel tensor
(its shape, dtype and values), so another image, image size, aspect-ratio mode, crop or
normalisation is another name. The entry's folder is the sha256 of everything else the hidden
states depend on: the tower's weights (a fingerprint of every tensor), its config, the hidden-state
indices requested, the tower's dtype and the autocast setting the tower ran under. Each file also
records that folder key and is checked on reading. Files are written atomically, so a crash never
leaves a half-written entry.

Size: one entry holds `len(indices) x tokens x width` values per image (DINOv2-S at 112 px,
two states: about 0.2 MB in float32); for LLaVA-1.5's 558k pretraining images at 336 px this is
terabytes, so the cache suits small data sets trained for several epochs (the CPU quick start).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from llava_vitsplit.split import BackboneAdapter, frozen_hidden_states

CACHE_FORMAT = 1
KEY_FILE = "key.json"


def tensor_digest(tensor: torch.Tensor, digest=None):
    """Feed a tensor's shape, dtype and bytes into a sha256 (any dtype, bf16 included)."""
    digest = digest if digest is not None else hashlib.sha256()
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    digest.update(f"{tuple(tensor.shape)}|{tensor.dtype}|".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest


def weights_fingerprint(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (name, shape, dtype, values) of `module`."""
    digest = hashlib.sha256()
    for name, tensor in sorted(chain(module.named_parameters(), module.named_buffers())):
        if hasattr(tensor, "ds_id"):  # DeepSpeed ZeRO-3 holds a shard of it on this rank
            raise ValueError(
                f"--vision_feature_cache: the tower's {name} is partitioned (DeepSpeed ZeRO-3); "
                "the cache needs the whole tower on every rank (use ZeRO-2 or no cache)"
            )
        digest.update(name.encode())
        tensor_digest(tensor, digest)
    return digest.hexdigest()


def autocast_setting(device_type: str) -> str:
    """The autocast the tower would run under here: part of the key (bf16 states differ from fp32)."""
    if not torch.is_autocast_enabled(device_type):
        return "off"
    return str(torch.get_autocast_dtype(device_type))


class VisionFeatureCache:
    """Hidden states of a frozen tower, one safetensors file per processed image, under `root`."""

    def __init__(self, root: str | Path, tower: nn.Module) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"--vision_feature_cache {self.root} exists and is not a folder")
        self.tower_key = {
            "format": CACHE_FORMAT,
            "tower_class": type(tower).__name__,
            "tower_config": json.loads(tower.config.to_json_string(use_diff=False)),
            "tower_weights": weights_fingerprint(tower),
            "tower_dtype": str(next(tower.parameters()).dtype),
        }
        self._folders: dict[tuple, Path] = {}
        self.hits = 0
        self.misses = 0

    def hidden_states(
        self, adapter: BackboneAdapter, pixel_values: torch.Tensor, indices: Iterable[int]
    ) -> dict[int, torch.Tensor]:
        """What `frozen_hidden_states(adapter, pixel_values, indices)` returns, from the cache where it can."""
        indices = sorted(set(indices))
        folder = self._folder(indices, autocast_setting(pixel_values.device.type))
        names = [tensor_digest(image).hexdigest() for image in pixel_values]
        per_image: list[dict[int, torch.Tensor] | None] = [self._read(folder, name) for name in names]
        missing = [i for i, entry in enumerate(per_image) if entry is None]
        if missing:
            computed = frozen_hidden_states(adapter, pixel_values[missing], indices)
            for row, image_index in enumerate(missing):
                entry = {layer: computed[layer][row] for layer in indices}
                self._write(folder, names[image_index], entry)
                per_image[image_index] = entry
        self.hits += len(names) - len(missing)
        self.misses += len(missing)
        device = pixel_values.device
        return {layer: torch.stack([entry[layer] for entry in per_image]).to(device) for layer in indices}

    def _folder(self, indices: list[int], autocast: str) -> Path:
        """The entry folder of this key; its `key.json` says in words what the key holds."""
        if (tuple(indices), autocast) not in self._folders:
            key = {**self.tower_key, "hidden_state_indices": indices, "autocast": autocast}
            text = json.dumps(key, sort_keys=True)
            folder = self.root / hashlib.sha256(text.encode()).hexdigest()[:32]
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / KEY_FILE).exists():
                atomic_write_text(folder / KEY_FILE, json.dumps(key, indent=1, sort_keys=True))
            self._folders[(tuple(indices), autocast)] = folder
        return self._folders[(tuple(indices), autocast)]

    def _read(self, folder: Path, name: str) -> dict[int, torch.Tensor] | None:
        path = folder / f"{name}.safetensors"
        if not path.exists():
            return None
        try:
            with safe_open(path, framework="pt") as handle:
                written_under = (handle.metadata() or {}).get("key")
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        except (SafetensorError, OSError) as error:
            raise ValueError(f"--vision_feature_cache: unreadable entry {path} ({error}); delete it") from None
        if written_under != folder.name:
            raise ValueError(f"--vision_feature_cache: {path} was written under another key; delete it")
        return {int(name.removeprefix("hidden_state.")): tensor for name, tensor in tensors.items()}

    def _write(self, folder: Path, name: str, entry: dict[int, torch.Tensor]) -> None:
        path = folder / f"{name}.safetensors"
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tensors = {f"hidden_state.{layer}": state.detach().to("cpu").contiguous() for layer, state in entry.items()}
        save_file(tensors, temporary, metadata={"key": folder.name})
        os.replace(temporary, path)  # several ranks may write the same entry: last one wins, whole


def atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
