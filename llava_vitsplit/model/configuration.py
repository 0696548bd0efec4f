"""Configuration of LLaVA with a ViT-Split (or MLP / linear) multimodal projector.

It extends transformers' ``LlavaConfig``: every field of a ``llava-hf`` config means the same here
(``vision_feature_layer``, ``vision_feature_select_strategy``, ``image_token_index``/``image_token_id``,
``image_seq_length``, ...). A ``llava-hf`` ``config.json`` loads as ``projector_type="mlp2x_gelu"``.
"""

from __future__ import annotations

from typing import Literal

from huggingface_hub.dataclasses import strict
from transformers import LlavaConfig

from llava_vitsplit.constants import PROJECTOR_TYPES
from llava_vitsplit.split import ViTSplitConfig, adapter_family, get_preset, vision_family

ProjectorType = Literal[PROJECTOR_TYPES]
VitsplitVariant = Literal["official", "paper"]

# The split module's LLaVA presets: "llava" is the paper's recipe, "llava-official" the authors' release.
VARIANT_PRESETS = {"paper": "llava", "official": "llava-official"}
PRESET_VARIANTS = {preset: variant for variant, preset in VARIANT_PRESETS.items()}
# ViTSplitConfig fields read off the vision tower, so never stored in ``vitsplit``
TOWER_FIELDS = ("num_layers", "hidden_size")


@strict
class LlavaViTSplitConfig(LlavaConfig):
    """``LlavaConfig`` plus the projector choice.

    ``vitsplit`` holds the ``ViTSplitConfig`` fields other than ``num_layers``/``hidden_size`` (those
    are read off ``vision_config``). Left empty, it is filled from the split module's preset for
    ``vitsplit_variant``, re-anchored to this tower's depth: the LLaVA presets count their layers
    from the end (split point = L - 1), so they carry over to towers of any depth.
    """

    model_type = "llava_vitsplit"

    projector_type: ProjectorType = "vitsplit"
    vitsplit_variant: VitsplitVariant = "paper"
    vitsplit: dict | None = None
    mm_vision_tower: str | None = None
    """Folder the vision tower was loaded from (LLaVA's field); used to rebuild the model from an LLM
    base when only a projector or LoRA weights were saved."""

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        family = vision_family(self.vision_config)
        if self.projector_type == "vitsplit":
            if self.vitsplit is None:
                self.vitsplit = default_vitsplit_fields(
                    self.vitsplit_variant,
                    num_layers=self.vision_config.num_hidden_layers,
                    hidden_size=self.vision_config.hidden_size,
                    llm_width=self.text_config.hidden_size,
                    family=family,
                )
            split = self.split_config  # validates every field
            if self.vitsplit_variant == "official" and split.resolved_fusion_width != self.text_config.hidden_size:
                raise ValueError(
                    f"vitsplit_variant='official' fuses straight to the LLM width, so vitsplit.fusion_width must be "
                    f"{self.text_config.hidden_size} (text_config.hidden_size), got {split.resolved_fusion_width}"
                )
        elif self.vitsplit is not None:
            raise ValueError(f"vitsplit fields are only used with projector_type='vitsplit', not {self.projector_type!r}")
        num_layers = self.vision_config.num_hidden_layers
        layers = [self.vision_feature_layer] if isinstance(self.vision_feature_layer, int) else self.vision_feature_layer
        bad = [layer for layer in layers if not -num_layers - 1 <= layer <= num_layers]
        if bad:
            raise ValueError(
                f"vision_feature_layer {bad} out of range for a {num_layers}-block tower "
                f"(hidden states are indexed {-num_layers - 1}..{num_layers})"
            )

    @property
    def split_config(self) -> ViTSplitConfig:
        """The ``ViTSplitConfig`` of the projector (``projector_type="vitsplit"`` only)."""
        if self.projector_type != "vitsplit":
            raise AttributeError(f"projector_type={self.projector_type!r} has no ViT-Split config")
        return ViTSplitConfig.from_dict(
            self.vitsplit, num_layers=self.vision_config.num_hidden_layers, hidden_size=self.vision_config.hidden_size
        )

    @property
    def feature_hidden_state_indices(self) -> list[int]:
        """Indices into the tower's ``hs[0..L]`` that the MLP/linear projector reads."""
        num_layers = self.vision_config.num_hidden_layers
        layers = [self.vision_feature_layer] if isinstance(self.vision_feature_layer, int) else self.vision_feature_layer
        return [layer % (num_layers + 1) for layer in layers]

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        return cls.ours_from_saved(config_dict), kwargs

    @classmethod
    def ours_from_saved(cls, config_dict: dict) -> dict:
        """A saved ``config.json`` (ours or llava-hf's) as ours: a llava-hf config is this config with an MLP projector."""
        if config_dict.get("model_type") == "llava":
            config_dict = {**config_dict, "model_type": cls.model_type}
            config_dict.setdefault("projector_type", "mlp2x_gelu")
        return config_dict


def default_vitsplit_fields(
    variant: str, *, num_layers: int, hidden_size: int, llm_width: int, family: str, **overrides
) -> dict:
    """ViT-Split fields of a LLaVA preset, moved onto a tower of ``num_layers`` blocks of width ``hidden_size``.

    The presets are written for CLIP-L (24 blocks, width 1024, Vicuna-7B): their layer ids count from
    the end and their widths are multiples of the tower or LLM width, so both carry over. Whether the
    tower's final norm is applied is the family's rule (``BackboneAdapter.features_after_final_norm``).
    """
    if variant not in VARIANT_PRESETS:
        raise ValueError(f"unknown vitsplit_variant {variant!r}; choose one of {sorted(VARIANT_PRESETS)}")
    preset = get_preset(VARIANT_PRESETS[variant])
    reference = preset.split_config()
    shift = num_layers - reference.num_layers
    fields = reference.to_dict(exclude=TOWER_FIELDS)
    fields["split_point"] = reference.resolved_split_point + shift
    if reference.selection == "uniform":
        fields["prior_start_layer"] = reference.prior_start_layer + shift
    if reference.prior_layer_ids is not None:
        fields["prior_layer_ids"] = [i + shift for i in reference.prior_layer_ids]
    fields["apply_final_norm"] = adapter_family(family).features_after_final_norm
    fields.update(overrides)
    # Widths the preset ties to K_p * D (prior) or the LLM (fusion) follow this tower, LLM and K_p.
    if reference.prior_width is not None and "prior_width" not in overrides:
        fields["prior_width"] = fields["num_prior_layers"] * hidden_size
    if reference.fusion_width is not None and "fusion_width" not in overrides:
        fields["fusion_width"] = llm_width
    # validates every field (unknown names included) and stores the JSON form
    return ViTSplitConfig.from_dict(fields, num_layers=num_layers, hidden_size=hidden_size).to_dict(exclude=TOWER_FIELDS)
