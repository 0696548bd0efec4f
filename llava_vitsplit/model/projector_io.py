"""Saving and loading the projector alone (stage-1 output), ours and LLaVA's / the ViT-Split authors'.

Ours: ``mm_projector.safetensors`` (keys ``model.multi_modal_projector.*``) + ``projector_config.json``.
LLaVA and the authors save ``mm_projector.bin``, a pickled state dict with keys
``model.mm_projector.*``: LLaVA's MLP is ``0``/``2`` (our ``linear_1``/``linear_2``); the authors'
ViT-Split is ``tuned_head`` / ``frozen_conv`` / ``fusion_conv`` (our task head / prior head / fusion net).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from llava_vitsplit.constants import PROJECTOR_MODULE
from llava_vitsplit.state_dicts import load_state_dict_strictly

from .checkpoint_files import read_json, read_tensor_file

PROJECTOR_WEIGHTS = "mm_projector.safetensors"
PROJECTOR_CONFIG = "projector_config.json"
LLAVA_PROJECTOR_WEIGHTS = "mm_projector.bin"
KEY_PREFIX = f"model.{PROJECTOR_MODULE}."

# LLaVA-side module names -> ours, per projector type.
_RENAMES = {
    "mlp2x_gelu": [(r"^0\.", "linear_1."), (r"^2\.", "linear_2.")],
    "linear": [],
    "vitsplit": [
        (r"^tuned_head\.", "heads.task_head."),
        (r"^frozen_conv\.", "heads.prior_head."),
        (r"^fusion_conv\.", "heads.fusion."),
    ],
}


def projector_settings(config) -> dict:
    """What a saved projector needs besides its weights: its type and fields, and the widths it joins."""
    return {
        "projector_type": config.projector_type,
        "vitsplit_variant": config.vitsplit_variant if config.projector_type == "vitsplit" else None,
        "vitsplit": config.vitsplit,
        "vision_feature_layer": config.vision_feature_layer,
        "vision_feature_select_strategy": config.vision_feature_select_strategy,
        "projector_hidden_act": config.projector_hidden_act,
        "multimodal_projector_bias": config.multimodal_projector_bias,
        "mm_hidden_size": config.vision_config.hidden_size,
        "llm_hidden_size": config.text_config.hidden_size,
        "mm_vision_tower": config.mm_vision_tower,
    }


def save_projector(model, folder: str | os.PathLike) -> Path:
    """Write ``mm_projector.safetensors`` and ``projector_config.json`` into ``folder``."""
    return save_projector_state(model, model.state_dict(), folder)


def save_projector_state(model, state_dict: dict[str, torch.Tensor], folder: str | os.PathLike) -> Path:
    """``save_projector`` from a full state dict (e.g. one DeepSpeed ZeRO-3 gathered for saving)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        KEY_PREFIX + key.split(f"{PROJECTOR_MODULE}.", 1)[1]: tensor.detach().contiguous().cpu()
        for key, tensor in state_dict.items()
        if f"{PROJECTOR_MODULE}." in key
    }
    if not state:
        raise ValueError(f"the state dict holds no {PROJECTOR_MODULE}.* tensors")
    save_file(state, folder / PROJECTOR_WEIGHTS, metadata={"format": "pt"})
    save_projector_config(model.config, folder)
    return folder / PROJECTOR_WEIGHTS


def save_projector_config(config, folder: str | os.PathLike) -> Path:
    """Write ``projector_config.json`` (what ``load_projector`` checks) into ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder) / PROJECTOR_CONFIG
    path.write_text(json.dumps(projector_settings(config), indent=2) + "\n")
    return path


def projector_file(path: str | os.PathLike) -> Path:
    """The weights file named by ``path``: itself, or in a folder ours first, then LLaVA's."""
    path = Path(path)
    if path.is_dir():
        for name in (PROJECTOR_WEIGHTS, LLAVA_PROJECTOR_WEIGHTS):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"no {PROJECTOR_WEIGHTS} or {LLAVA_PROJECTOR_WEIGHTS} in {path}")
    if not path.is_file():
        raise FileNotFoundError(f"projector file not found: {path}")
    return path


@dataclass(frozen=True)
class ProjectorSidecar:
    """What was saved beside a projector file, read once: our ``projector_config.json`` (``ours``), or
    LLaVA's / the authors' run ``config.json`` (``mm_*`` fields), or nothing (both ``None``/empty)."""

    ours: dict | None = None
    llava: dict = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> ProjectorSidecar:
        ours = read_json(path.parent / PROJECTOR_CONFIG)
        if ours is not None:
            return cls(ours=ours)
        return cls(llava=read_json(path.parent / "config.json") or {})

    @property
    def projector_type(self) -> str | None:
        """The projector type recorded, if any (``mm_projector_type`` in LLaVA's naming)."""
        return self.ours["projector_type"] if self.ours is not None else self.llava.get("mm_projector_type")

    @property
    def vision_tower(self) -> str | None:
        """The vision-tower folder recorded with the projector, if any."""
        return (self.ours if self.ours is not None else self.llava).get("mm_vision_tower")

    def check_type(self, path: Path, projector_type: str) -> None:
        recorded = self.projector_type
        if recorded is not None and recorded != projector_type:
            raise ValueError(f"{path} holds a {recorded!r} projector but the model's projector_type is {projector_type!r}")


def projector_state(raw: dict[str, torch.Tensor], projector_type: str) -> dict[str, torch.Tensor]:
    """Keys relative to the projector module, whichever layout ``raw`` was saved in."""
    state = {}
    for key, tensor in raw.items():
        local = re.split(rf"(?:^|\.)(?:mm_projector|{PROJECTOR_MODULE})\.", key)[-1]
        for pattern, replacement in _RENAMES[projector_type]:
            local = re.sub(pattern, replacement, local)
        state[local] = tensor
    return state


def load_projector(model, path: str | os.PathLike, sidecar: ProjectorSidecar | None = None) -> None:
    """Load projector weights (ours or LLaVA's / the authors' ``mm_projector.bin``) into ``model``.

    A type recorded beside the file (``sidecar``, read here when not given) must match the model's; missing, unexpected or mis-shaped tensors are named with both
    shapes. Pickles are read with ``weights_only=True``.
    """
    path = projector_file(path)
    projector_type = model.config.projector_type
    (sidecar or ProjectorSidecar.read(path)).check_type(path, projector_type)
    projector = model.model.multi_modal_projector
    state = projector_state(read_tensor_file(path), projector_type)
    reference = next(projector.parameters())
    state = {key: tensor.to(reference.device, reference.dtype) for key, tensor in state.items()}
    load_state_dict_strictly(projector, state, source=f"projector file {path}")
