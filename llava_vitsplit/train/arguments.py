"""Command-line arguments of `python -m llava_vitsplit.train`: LLaVA's names, plus ViT-Split's.

LLaVA's own flags keep their names and meaning, so its launch scripts port line by line. Flags
LLaVA accepts but this fork does not implement (start/end image tokens, 4/8-bit QLoRA) are
rejected with a reason rather than ignored. Any flag not listed here is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import transformers

from llava_vitsplit.constants import PROJECTOR_TYPES
from llava_vitsplit.data.conversation import TEMPLATES


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "local folder of the LLM (a Hugging Face causal LM)"})
    vision_tower: str = field(metadata={"help": "local folder of the vision tower (CLIP, SigLIP or DINOv2)"})
    version: str = field(default="v1", metadata={"help": f"conversation template: {', '.join(TEMPLATES)}"})
    mm_projector_type: str = field(default="vitsplit", metadata={"help": f"one of {', '.join(PROJECTOR_TYPES)}"})
    mm_vision_select_layer: int = field(default=-2, metadata={"help": "hidden state of the tower fed to the LLM"})
    mm_vision_select_feature: str = field(default="patch", metadata={"help": "'patch' drops CLS (LLaVA default)"})
    tune_mm_mlp_adapter: bool = field(
        default=False, metadata={"help": "stage 1: train only the projector and save only its weights"}
    )
    pretrain_mm_mlp_adapter: str | None = field(
        default=None, metadata={"help": "stage 2: projector weights of stage 1 (mm_projector.safetensors or .bin)"}
    )
    freeze_backbone: bool = field(default=False, metadata={"help": "keep the LLM frozen (projector only)"})
    mm_use_im_start_end: bool = field(default=False, metadata={"help": "not supported; must stay False"})
    mm_use_im_patch_token: bool = field(default=False, metadata={"help": "not supported; must stay False"})
    vitsplit_preset: str | None = field(
        default=None, metadata={"help": "named ViT-Split setting (`llava-vitsplit presets`); default 'llava'"}
    )
    vitsplit_num_task_layers: int | None = field(default=None, metadata={"help": "K_t: blocks in the task head"})
    vitsplit_num_prior_layers: int | None = field(default=None, metadata={"help": "K_p: frozen layers for the prior"})
    vitsplit_prior_start_layer: int | None = field(default=None, metadata={"help": "b: first block the prior may use"})
    image_size: int | None = field(
        default=None, metadata={"help": "side of the processed image (default: the tower's own, 336 for CLIP-L/14-336)"}
    )

    def __post_init__(self) -> None:
        if self.version not in TEMPLATES:
            raise ValueError(f"--version {self.version!r}: choose one of {', '.join(TEMPLATES)}")
        if self.mm_projector_type not in PROJECTOR_TYPES:
            raise ValueError(f"--mm_projector_type {self.mm_projector_type!r}: choose one of {', '.join(PROJECTOR_TYPES)}")
        if self.mm_vision_select_feature != "patch":
            raise ValueError("--mm_vision_select_feature: only 'patch' (LLaVA-1.5's choice, CLS dropped) is supported")
        for name in ("mm_use_im_start_end", "mm_use_im_patch_token"):
            if getattr(self, name):
                raise ValueError(f"--{name} True is not supported (LLaVA-1.5 trains with it False)")
        if self.tune_mm_mlp_adapter and self.pretrain_mm_mlp_adapter:
            raise ValueError("--tune_mm_mlp_adapter (stage 1) and --pretrain_mm_mlp_adapter (stage 2) exclude each other")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"--image_size must be a positive number of pixels, got {self.image_size}")
        vitsplit_fields = (self.vitsplit_preset, *self.vitsplit_overrides().values())
        if self.mm_projector_type != "vitsplit" and any(v is not None for v in vitsplit_fields):
            raise ValueError(f"--vitsplit_* flags need --mm_projector_type vitsplit, got {self.mm_projector_type!r}")

    def vitsplit_overrides(self) -> dict:
        """K_t / K_p / b given on the command line, as `ViTSplitConfig` fields.

        K_p or b choose the prior layers by the paper's uniform rule (eq. 2), also over a preset
        that names its prior layers explicitly (`llava-official`: hs[-2] alone).
        """
        fields = {
            "num_task_layers": self.vitsplit_num_task_layers,
            "num_prior_layers": self.vitsplit_num_prior_layers,
            "prior_start_layer": self.vitsplit_prior_start_layer,
        }
        overrides = {name: value for name, value in fields.items() if value is not None}
        if "num_prior_layers" in overrides or "prior_start_layer" in overrides:
            overrides.update(selection="uniform", prior_layer_ids=None)
        return overrides


@dataclass
class DataArguments:
    data_path: str = field(metadata={"help": "LLaVA-format JSON list of records"})
    image_folder: str | None = field(default=None, metadata={"help": "folder the records' `image` paths are relative to"})
    image_aspect_ratio: str = field(default="square", metadata={"help": "'square' (resize) or 'pad' (to square first)"})
    lazy_preprocess: bool = field(default=True, metadata={"help": "accepted for LLaVA scripts; data is always lazy"})
    skip_bad_records: bool = field(
        default=False, metadata={"help": "skip unusable records instead of stopping; all are reported at the end"}
    )

    def __post_init__(self) -> None:
        if self.image_aspect_ratio not in ("square", "pad"):
            raise ValueError(f"--image_aspect_ratio {self.image_aspect_ratio!r}: choose 'square' or 'pad'")


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    model_max_length: int = field(default=2048, metadata={"help": "samples are truncated (and counted) past this"})
    group_by_modality_length: bool = field(
        default=False, metadata={"help": "batches hold only image or only text samples, of similar length"}
    )
    padding_free: bool = field(
        default=False, metadata={"help": "samples of a batch end to end in one row (no padding), position_ids restart"}
    )
    vision_feature_cache: str | None = field(
        default=None, metadata={"help": "folder caching the frozen tower's hidden states per image (safetensors)"}
    )
    mm_projector_lr: float | None = field(default=None, metadata={"help": "learning rate of the projector"})
    vitsplit_task_head_lr: float | None = field(
        default=None, metadata={"help": "learning rate of the ViT-Split task head (default: the projector's)"}
    )
    freeze_mm_mlp_adapter: bool = field(default=False, metadata={"help": "keep the projector frozen in stage 2"})
    lora_enable: bool = field(default=False, metadata={"help": "train LoRA adapters on the LLM instead of all of it"})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling numerator"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_bias: str = field(default="none", metadata={"help": "'none', 'all' or 'lora_only'"})
    bits: int = field(default=16, metadata={"help": "only 16 (4/8-bit QLoRA is not supported)"})
    remove_unused_columns: bool = field(default=False, metadata={"help": "must stay False: samples carry images"})
    cache_dir: str | None = field(default=None, metadata={"help": "accepted for LLaVA scripts; unused (local folders)"})
    warmup_ratio: float | None = field(
        default=None, metadata={"help": "LLaVA's name: warmup as a fraction of all steps (sets --warmup_steps)"}
    )
    allow_changed_args: str = field(
        default="", metadata={"help": "comma-separated arguments allowed to differ from the run being resumed"}
    )

    def __post_init__(self) -> None:
        if self.warmup_ratio is not None:
            # transformers 5 folded warmup_ratio into warmup_steps (a float below 1 is a ratio).
            if not 0 <= self.warmup_ratio < 1:
                raise ValueError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
            if self.warmup_steps:
                raise ValueError("give --warmup_ratio or --warmup_steps, not both")
            self.warmup_steps = self.warmup_ratio
        super().__post_init__()
        if self.bits != 16:
            raise ValueError(f"--bits {self.bits}: quantised (QLoRA) training is not supported; use 16")
        if self.remove_unused_columns:
            raise ValueError("--remove_unused_columns True would drop the images; leave it False")
        if self.lora_bias not in ("none", "all", "lora_only"):
            raise ValueError(f"--lora_bias {self.lora_bias!r}: choose 'none', 'all' or 'lora_only'")
        if self.model_max_length < 1:
            raise ValueError(f"--model_max_length must be positive, got {self.model_max_length}")
        for name in ("learning_rate", "mm_projector_lr", "vitsplit_task_head_lr"):
            rate = getattr(self, name)
            if rate is not None and rate < 0:
                raise ValueError(f"--{name} {rate}: a learning rate must be >= 0 (a negative one ascends the loss)")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ValueError(
                f"--num_train_epochs {self.num_train_epochs} with --max_steps {self.max_steps} trains no step: "
                "give a positive --num_train_epochs or --max_steps"
            )


def parse_arguments(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse (and validate) the command line; an unknown flag is an error."""
    parser = transformers.HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    return parser.parse_args_into_dataclasses(args=argv)
