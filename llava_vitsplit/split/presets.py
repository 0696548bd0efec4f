"""Named ViT-Split settings: every row of the paper's Table 10, plus the authors' released LLaVA recipe.

A preset names its task (the one name the dense task registry and configs use), a backbone size
(``BACKBONES``), an input resolution and the split hyper-parameters. A dense task implies its head;
``head`` tags only heads the task does not name (Mask R-CNN, LLaVA's projector): ``split`` knows
nothing of segmentation or LLaVA; the packages that build heads read the task and the tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .backbones import BACKBONES
from .config import ViTSplitConfig

LLAVA_LLM_WIDTH = 4096  # Vicuna-7B, the LLM of LLaVA-1.5-7B in Table 4


@dataclass(frozen=True, kw_only=True)
class ViTSplitPreset:
    """One published setting; every field is named where the preset is written."""

    name: str
    task: str  # "segmentation", "depth", "detection", "vqa"
    dataset: str
    backbone: str
    image_size: tuple[int, int]
    num_task_layers: int  # K_t
    num_prior_layers: int  # K_p
    prior_start_layer: int  # b
    source: str  # where the numbers come from: a table of the paper, or the authors' release
    head: str | None = None  # a head the task does not imply: "mask-rcnn", "llm-linear", or None
    num_classes: int | None = None
    patch_size: int | None = None  # None: the backbone's own (detection resamples 14 -> 16)
    split_fields: dict = field(default_factory=dict)  # other ViTSplitConfig fields
    note: str = ""

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError(f"preset {self.name!r}: say where its numbers come from (source)")
        if self.backbone not in BACKBONES:
            raise ValueError(
                f"preset {self.name!r}: unknown backbone {self.backbone!r}; known: {sorted(BACKBONES)}"
            )
        self.split_config()  # validate the split hyper-parameters now, not at first use

    def split_config(self, **overrides) -> ViTSplitConfig:
        spec = BACKBONES[self.backbone]
        fields = dict(
            num_layers=spec.num_layers,
            hidden_size=spec.hidden_size,
            num_task_layers=self.num_task_layers,
            num_prior_layers=self.num_prior_layers,
            prior_start_layer=self.prior_start_layer,
            **self.split_fields,
        )
        fields.update(overrides)
        return ViTSplitConfig(**fields)


def _segmentation(name: str, dataset: str, num_classes: int, **fields) -> ViTSplitPreset:
    return ViTSplitPreset(name=name, task="segmentation", dataset=dataset, num_classes=num_classes, **fields)


def _depth(name: str, **fields) -> ViTSplitPreset:
    return ViTSplitPreset(name=name, task="depth", dataset="NYU-V2", image_size=(416, 544), **fields)


def _detection(name: str, **fields) -> ViTSplitPreset:
    # The detection recipe resamples DINOv2's 14 px patch embedding to 16 px.
    return ViTSplitPreset(
        name=name, task="detection", dataset="COCO 2017", image_size=(1024, 1024), head="mask-rcnn",
        num_classes=80, patch_size=16, **fields,
    )  # fmt: skip


TABLE_10 = "paper Table 10"
_CLIP_L = BACKBONES["clip-l-336"]
_PRESETS = [
    _segmentation(
        "ade20k-s",
        "ADE20K",
        150,
        backbone="dinov2-s",
        image_size=(512, 512),
        num_task_layers=3,
        num_prior_layers=4,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _segmentation(
        "ade20k-b",
        "ADE20K",
        150,
        backbone="dinov2-b",
        image_size=(512, 512),
        num_task_layers=3,
        num_prior_layers=4,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _segmentation(
        "ade20k-l",
        "ADE20K",
        150,
        backbone="dinov2-l",
        image_size=(512, 512),
        num_task_layers=4,
        num_prior_layers=8,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _segmentation(
        "ade20k-l-896",
        "ADE20K",
        150,
        backbone="dinov2-l",
        image_size=(896, 896),
        num_task_layers=4,
        num_prior_layers=8,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _segmentation(
        "ade20k-g-896",
        "ADE20K",
        150,
        backbone="dinov2-g",
        image_size=(896, 896),
        num_task_layers=8,
        num_prior_layers=14,
        prior_start_layer=26,
        source=TABLE_10,
    ),
    _segmentation(
        "cityscapes-l",
        "Cityscapes",
        19,
        backbone="dinov2-l",
        image_size=(896, 896),
        num_task_layers=10,
        num_prior_layers=8,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _segmentation(
        "pascal-context-l",
        "Pascal Context",
        59,
        backbone="dinov2-l",
        image_size=(480, 480),
        num_task_layers=6,
        num_prior_layers=10,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _depth(
        "nyu-s",
        backbone="dinov2-s",
        num_task_layers=3,
        num_prior_layers=4,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _depth(
        "nyu-b",
        backbone="dinov2-b",
        num_task_layers=3,
        num_prior_layers=4,
        prior_start_layer=2,
        source="paper Table 11 (the published model's trainable parameters); Table 10 differs in K_t",
        note="Table 10 lists K_t=4, but Table 11's 37.0M trainable parameters is K_t=3 (K_t=4 gives 44.1M); "
        "we follow the published model",
    ),
    _depth(
        "nyu-l",
        backbone="dinov2-l",
        num_task_layers=3,
        num_prior_layers=4,
        prior_start_layer=6,
        source=TABLE_10,
    ),
    _detection(
        "coco-s",
        backbone="dinov2-s",
        num_task_layers=11,
        num_prior_layers=4,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _detection(
        "coco-b",
        backbone="dinov2-b",
        num_task_layers=11,
        num_prior_layers=6,
        prior_start_layer=2,
        source=TABLE_10,
    ),
    _detection(
        "coco-l",
        backbone="dinov2-l",
        num_task_layers=23,
        num_prior_layers=8,
        prior_start_layer=6,
        source=TABLE_10,
    ),
    ViTSplitPreset(
        name="llava",
        task="vqa",
        dataset="LLaVA-1.5 mix665k",
        backbone="clip-l-336",
        image_size=(336, 336),
        num_task_layers=1,
        num_prior_layers=1,
        prior_start_layer=23,
        head="llm-linear",
        split_fields=dict(split_point=_CLIP_L.num_layers - 1, apply_final_norm=False),
        source=TABLE_10 + " (LLaVA row); the resolution is CLIP-L/14-336's",
        note="Table 10 row (prior = last block, b=23); deformable prior head and fusion net at width D, "
        "then a linear map to the LLM width. Table 10 says 512 px; CLIP-L/14-336 runs at 336 px",
    ),
    ViTSplitPreset(
        name="llava-official",
        task="vqa",
        dataset="LLaVA-1.5 mix665k",
        backbone="clip-l-336",
        image_size=(336, 336),
        num_task_layers=1,
        num_prior_layers=1,
        prior_start_layer=22,
        split_fields=dict(
            selection="explicit",
            prior_layer_ids=(_CLIP_L.num_layers - 2,),  # hs[-2], LLaVA's feature layer
            split_point=_CLIP_L.num_layers - 1,
            conv="plain",
            prior_width=_CLIP_L.hidden_size,  # K_p * D with K_p = 1
            fusion_width=LLAVA_LLM_WIDTH,
            apply_final_norm=False,
            task_head_prefix_tokens=False,
        ),
        source="the authors' released LLaVA projector (where it differs from Table 10's LLaVA row)",
        note="the authors' released projector: task head = copy of the penultimate CLIP block on hs[-3] "
        "without CLS, prior = hs[-2], plain 3x3 convs, fusion straight to the LLM width",
    ),
]
PRESETS: dict[str, ViTSplitPreset] = {preset.name: preset for preset in _PRESETS}


def get_preset(name: str) -> ViTSplitPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown ViT-Split preset {name!r}; available: {', '.join(PRESETS)}")
    return PRESETS[name]


def list_presets() -> list[ViTSplitPreset]:
    return list(PRESETS.values())
