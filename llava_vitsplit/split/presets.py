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


@dataclass(frozen=True)
class ViTSplitPreset:
    name: str
    task: str  # "segmentation", "depth", "detection", "vqa"
    dataset: str
    backbone: str
    image_size: tuple[int, int]
    num_task_layers: int
    num_prior_layers: int
    prior_start_layer: int
    head: str | None = None  # a head the task does not imply: "mask-rcnn", "llm-linear", or None
    num_classes: int | None = None
    patch_size: int | None = None  # None: the backbone's own (detection resamples 14 -> 16)
    split_fields: dict = field(default_factory=dict)  # other ViTSplitConfig fields
    note: str = ""

    def __post_init__(self) -> None:
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


def _dense(name, task, dataset, backbone, size, kt, kp, b, head=None, classes=None, **kw) -> ViTSplitPreset:
    return ViTSplitPreset(
        name, task, dataset, backbone, size, kt, kp, b, head=head, num_classes=classes, **kw
    )


_CLIP_L = BACKBONES["clip-l-336"]
_PRESETS = [
    _dense("ade20k-s", "segmentation", "ADE20K", "dinov2-s", (512, 512), 3, 4, 2, classes=150),
    _dense("ade20k-b", "segmentation", "ADE20K", "dinov2-b", (512, 512), 3, 4, 2, classes=150),
    _dense("ade20k-l", "segmentation", "ADE20K", "dinov2-l", (512, 512), 4, 8, 2, classes=150),
    _dense("ade20k-l-896", "segmentation", "ADE20K", "dinov2-l", (896, 896), 4, 8, 2, classes=150),
    _dense("ade20k-g-896", "segmentation", "ADE20K", "dinov2-g", (896, 896), 8, 14, 26, classes=150),
    _dense("cityscapes-l", "segmentation", "Cityscapes", "dinov2-l", (896, 896), 10, 8, 2, classes=19),
    _dense(
        "pascal-context-l",
        "segmentation",
        "Pascal Context",
        "dinov2-l",
        (480, 480),
        6,
        10,
        2,
        classes=59,
    ),
    _dense("nyu-s", "depth", "NYU-V2", "dinov2-s", (416, 544), 3, 4, 2),
    _dense(
        "nyu-b",
        "depth",
        "NYU-V2",
        "dinov2-b",
        (416, 544),
        3,
        4,
        2,
        note="Table 10 lists K_t=4, but Table 11's 37.0M trainable parameters is K_t=3 (K_t=4 gives 44.1M); "
        "we follow the published model",
    ),
    _dense("nyu-l", "depth", "NYU-V2", "dinov2-l", (416, 544), 3, 4, 6),
    _dense(
        "coco-s", "detection", "COCO 2017", "dinov2-s", (1024, 1024), 11, 4, 2, "mask-rcnn", 80, patch_size=16
    ),
    _dense(
        "coco-b", "detection", "COCO 2017", "dinov2-b", (1024, 1024), 11, 6, 2, "mask-rcnn", 80, patch_size=16
    ),
    _dense(
        "coco-l", "detection", "COCO 2017", "dinov2-l", (1024, 1024), 23, 8, 6, "mask-rcnn", 80, patch_size=16
    ),
    ViTSplitPreset(
        "llava",
        "vqa",
        "LLaVA-1.5 mix665k",
        "clip-l-336",
        (336, 336),
        1,
        1,
        23,
        head="llm-linear",
        split_fields=dict(split_point=_CLIP_L.num_layers - 1, apply_final_norm=False),
        note="Table 10 row (prior = last block, b=23); deformable prior head and fusion net at width D, "
        "then a linear map to the LLM width. Table 10 says 512 px; CLIP-L/14-336 runs at 336 px",
    ),
    ViTSplitPreset(
        "llava-official",
        "vqa",
        "LLaVA-1.5 mix665k",
        "clip-l-336",
        (336, 336),
        1,
        1,
        22,
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
