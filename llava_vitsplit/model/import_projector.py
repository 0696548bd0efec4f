"""Build a model around a stage-1 projector file: LLM folder + vision-tower folder + projector weights.

The projector's settings come from what was saved beside it - our ``projector_config.json``, or
LLaVA's / the authors' ``config.json`` (``mm_projector_type``, ``mm_vision_select_layer``,
``mm_tuned_layers_num``, ``mm_frozen_select_layer``) - or, for a bare ``mm_projector.bin``, from
its tensor names and shapes. Explicit arguments win.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoConfig

from .checkpoint_files import read_tensor_file
from .image_processing import output_size
from .import_llava import llava_projector_fields
from .modeling import LlavaViTSplitForConditionalGeneration
from .processing import LlavaViTSplitProcessor
from .projector_io import ProjectorSidecar, load_projector, projector_file

_SETTINGS = ("projector_type", "vitsplit_variant", "vitsplit", "vision_feature_layer", "vision_feature_select_strategy")


def import_projector(
    projector_path: str | os.PathLike,
    llm_path: str | os.PathLike,
    vision_tower_path: str | os.PathLike | None = None,
    *,
    projector_type: str | None = None,
    vitsplit_variant: str | None = None,
    vitsplit_overrides: dict | None = None,
    image_size: int | None = None,
    image_aspect_ratio: str | None = None,
    torch_dtype: torch.dtype | None = None,
) -> tuple[LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor]:
    """``(model, processor)`` with the projector weights of ``projector_path`` (file or folder).

    The tower folder defaults to the one recorded with the projector (``mm_vision_tower``); image
    size and ``image_aspect_ratio`` default to those of a processor saved beside it, else the
    tower's size and ``pad``.
    """
    path = projector_file(projector_path)
    sidecar = ProjectorSidecar.read(path)
    tower = vision_tower_path or sidecar.vision_tower
    if tower is None or not (Path(tower) / "config.json").is_file():
        raise FileNotFoundError(
            f"no local vision tower for projector {path}: pass vision_tower_path / --vision-tower (recorded: {tower!r})"
        )
    settings = _saved_settings(path, sidecar, Path(tower), Path(llm_path))
    if projector_type is not None and projector_type != settings["projector_type"]:
        settings = {"projector_type": projector_type}  # the saved fields describe another projector
    if vitsplit_variant is not None:
        settings["vitsplit_variant"] = vitsplit_variant
    kwargs = {k: settings[k] for k in ("vision_feature_layer", "vision_feature_select_strategy") if k in settings}
    if settings["projector_type"] == "vitsplit":
        kwargs["vitsplit_preset"] = settings.get("vitsplit_variant", "paper")
        kwargs["vitsplit_overrides"] = {**(settings.get("vitsplit") or {}), **(vitsplit_overrides or {})}
    if (path.parent / "processor_config.json").is_file():
        saved = LlavaViTSplitProcessor.from_pretrained(path.parent)
        image_size = image_size or output_size(saved.image_processor)[0]
        image_aspect_ratio = image_aspect_ratio or saved.image_aspect_ratio
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        llm_path,
        tower,
        projector_type=settings["projector_type"],
        image_size=image_size,
        image_aspect_ratio=image_aspect_ratio or "pad",
        torch_dtype=torch_dtype,
        **kwargs,
    )
    load_projector(model, path, sidecar)
    return model, processor


def _saved_settings(path: Path, sidecar: ProjectorSidecar, tower: Path, llm: Path) -> dict:
    """Our projector settings for ``path``, from the file saved beside it or from its tensors."""
    if sidecar.ours is not None:
        return {k: sidecar.ours[k] for k in _SETTINGS if sidecar.ours.get(k) is not None}
    llava_config = sidecar.llava
    vision_config = _vision_config(tower)
    if "mm_projector_type" not in llava_config:
        llava_config = _llava_settings_from_tensors(path, vision_config.hidden_size)
    return llava_projector_fields(llava_config, vision_config, AutoConfig.from_pretrained(llm).hidden_size)


def _vision_config(tower: Path):
    config = AutoConfig.from_pretrained(tower)
    return getattr(config, "vision_config", config)  # a full CLIP/SigLIP checkpoint


def _llava_settings_from_tensors(path: Path, tower_width: int) -> dict:
    """LLaVA's ``mm_*`` settings read off a bare projector file's tensor names and shapes."""
    tensors = {key.split("mm_projector.")[-1]: value for key, value in read_tensor_file(path).items()}
    if {"0.weight", "2.weight"} <= set(tensors):
        return {"mm_projector_type": "mlp2x_gelu"}
    if set(tensors) <= {"weight", "bias"}:
        return {"mm_projector_type": "linear"}
    if "frozen_conv.0.weight" in tensors:
        task_layers = len({key.split(".")[1] for key in tensors if key.startswith("tuned_head.")})
        prior_layers = tensors["frozen_conv.0.weight"].shape[1] // tower_width
        if prior_layers != 1:
            raise ValueError(
                f"{path}: the prior head reads {prior_layers} frozen layers and the file does not say which; "
                "put the run's config.json (mm_frozen_select_layer) beside it"
            )
        return {"mm_projector_type": "vitsplit", "mm_tuned_layers_num": task_layers, "mm_frozen_select_layer": [-2]}
    raise ValueError(f"{path}: cannot tell the projector type from its tensors: {sorted(tensors)[:8]}")
