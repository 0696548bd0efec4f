"""LLaVA with a ViT-Split projector, as a transformers model.

The classes subclass transformers' Llava ones and replace only what differs, as VipLlava does:
the projector is built from ``projector_type`` and the image-feature path reads the frozen tower
through the split module (``frozen_hidden_states``: no autograd, stops at the deepest hidden state
any projector needs). Everything else - merging image features into the token embeddings, the
placeholder check, the LM head, loss, caching, ``generate`` - is transformers' own code, so the
weights layout is ``llava-hf``'s (``model.vision_tower``, ``model.multi_modal_projector``,
``model.language_model``, ``lm_head``) and a ``llava-hf`` folder loads as it is.
"""

from __future__ import annotations

import torch
from transformers import AutoModel
from transformers import initialization as init
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.llava.modeling_llava import (
    LlavaForConditionalGeneration,
    LlavaModel,
    LlavaPreTrainedModel,
)

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.safe_files import check_weights_folder, named_pickle_errors
from llava_vitsplit.split import DeformableConv3x3, adapt_backbone, frozen_hidden_states
from llava_vitsplit.state_dicts import raise_if_unfit, shape_mismatch

from .configuration import LlavaViTSplitConfig
from .projectors import build_projector

# On disk, the weights use the layout transformers writes for Llava (``language_model.model.*``,
# ``vision_tower.*``, ``multi_modal_projector.*`` at the top level), so folders go both ways.
register_checkpoint_conversion_mapping("llava_vitsplit", get_checkpoint_conversion_mapping("llava"), overwrite=True)
register_checkpoint_conversion_mapping(
    "LlavaViTSplitModel", get_checkpoint_conversion_mapping("LlavaModel"), overwrite=True
)


class LlavaViTSplitPreTrainedModel(LlavaPreTrainedModel):
    config_class = LlavaViTSplitConfig
    config: LlavaViTSplitConfig

    @torch.no_grad()
    def initialize_weights(self):
        super().initialize_weights()
        # DCNv1 starts as a plain 3x3 conv: zero offsets, where the generic Conv2d init gave noise.
        # (A container without parameters of its own never reaches `_init_weights`, hence here.)
        # `init.zeros_` leaves weights that were loaded from a checkpoint alone.
        for module in self.modules():
            if isinstance(module, DeformableConv3x3):
                init.zeros_(module.offset.weight)
                init.zeros_(module.offset.bias)


class LlavaViTSplitModel(LlavaViTSplitPreTrainedModel, LlavaModel):
    """Vision tower (frozen) + projector + language model, without the LM head."""

    def __init__(self, config: LlavaViTSplitConfig):
        LlavaPreTrainedModel.__init__(self, config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.vision_tower.requires_grad_(False)
        # A plain object over the tower (not a module), so the tower keeps its usual keys.
        self.vision_adapter = adapt_backbone(self.vision_tower)
        self.multi_modal_projector = build_projector(config, self.vision_adapter)
        self.language_model = AutoModel.from_config(config.text_config)
        # `--vision_feature_cache`: a `VisionFeatureCache` (not a module, not saved) or None.
        self.vision_feature_cache = None
        self.post_init()

    def train(self, mode: bool = True):
        # The tower is frozen in every stage: no gradient, no dropout or drop-path. Re-asserted here
        # because loading a checkpoint replaces the parameters (from_pretrained ends with eval()).
        super().train(mode)
        self.vision_tower.eval()
        self.vision_tower.requires_grad_(False)
        return self

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Projected image features, one ``(tokens, llm_width)`` tensor per image in ``pooler_output``."""
        pixel_values = pixel_values.to(self.vision_tower.dtype)
        adapter = self.vision_adapter
        # Dispatch on the config, not the module class: PEFT may wrap the projector (modules_to_save).
        if self.config.projector_type == "vitsplit":
            needed = self.config.split_config.needed_hidden_states
            states = self._frozen_states(pixel_values, needed)
            features = self.multi_modal_projector(states, adapter.grid_size(*pixel_values.shape[-2:]))
        else:
            layer = self.config.vision_feature_layer if vision_feature_layer is None else vision_feature_layer
            strategy = vision_feature_select_strategy or self.config.vision_feature_select_strategy
            indices = self._hidden_state_indices(layer)
            states = self._frozen_states(pixel_values, indices)
            # "default" drops CLS (and registers), as LLaVA's "patch" features; "full" keeps them.
            skip = adapter.num_prefix_tokens if strategy == "default" else 0
            selected = torch.cat([states[i][:, skip:] for i in indices], dim=-1)
            features = self.multi_modal_projector(selected)
        return BaseModelOutputWithPooling(pooler_output=list(features))

    def _frozen_states(self, pixel_values: torch.Tensor, indices) -> dict[int, torch.Tensor]:
        if self.vision_feature_cache is None:
            return frozen_hidden_states(self.vision_adapter, pixel_values, indices)
        return self.vision_feature_cache.hidden_states(self.vision_adapter, pixel_values, indices)

    def _hidden_state_indices(self, layer: int | list[int]) -> list[int]:
        num_states = self.config.vision_config.num_hidden_layers + 1
        return [i % num_states for i in ([layer] if isinstance(layer, int) else layer)]

    def forward(self, input_ids=None, pixel_values=None, cache=None, mm_encoder_outputs=None, **kwargs):
        prefill = cache is None or cache.get_seq_length() == 0
        if prefill and input_ids is not None and pixel_values is None and mm_encoder_outputs is None:
            count = int((input_ids == self.config.image_token_id).sum())
            if count:
                raise ValueError(
                    f"input_ids hold {count} image tokens (id {self.config.image_token_id}) but no pixel_values "
                    f"were given; pass the images or drop the {IMAGE_TOKEN} placeholders"
                )
        return super().forward(
            input_ids=input_ids, pixel_values=pixel_values, cache=cache, mm_encoder_outputs=mm_encoder_outputs, **kwargs
        )


class LlavaViTSplitForConditionalGeneration(LlavaViTSplitPreTrainedModel, LlavaForConditionalGeneration):
    """LLaVA-1.5 with a ViT-Split, MLP or linear projector; ``generate`` takes ``pixel_values``.

    ``input_ids`` carry ``config.image_seq_length`` copies of ``config.image_token_id`` per image
    (the processor expands each ``<image>``); ``pixel_values`` is ``(num_images, 3, H, W)``. A
    mismatch between image tokens and images raises ``ValueError``.
    """

    def __init__(self, config: LlavaViTSplitConfig):
        LlavaPreTrainedModel.__init__(self, config)
        self.model = LlavaViTSplitModel(config)
        self.lm_head = torch.nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' ``from_pretrained``, but strict: a missing, unexpected or mis-shaped tensor
        is an error that names it, never a silently re-initialised weight; a truncated weights file
        or a refused pickle is named too (``llava_vitsplit.safe_files``)."""
        wants_info = kwargs.pop("output_loading_info", False)
        kwargs.setdefault("ignore_mismatched_sizes", True)  # reported below, with both shapes
        check_weights_folder(pretrained_model_name_or_path)  # a truncated file is named, not a bare safetensors error
        with named_pickle_errors(pretrained_model_name_or_path):
            model, info = super().from_pretrained(
                pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
            )
        # transformers' own loading report, raised as one error
        problems = {
            "missing": sorted(info.get("missing_keys") or ()),
            "unexpected": sorted(info.get("unexpected_keys") or ()),
            "shape mismatch": [
                shape_mismatch(key, found, wanted) for key, found, wanted in sorted(info.get("mismatched_keys") or ())
            ],
            "errors": list(info.get("error_msgs") or ()),
        }
        raise_if_unfit(f"checkpoint {pretrained_model_name_or_path}", cls.__name__, problems)
        return (model, info) if wants_info else model

    @classmethod
    def from_parts(cls, llm_path, vision_tower_path, **kwargs):
        """A fresh model for stage-1 training from a local LLM folder and a local vision-tower folder.

        Returns ``(model, processor)``; see ``llava_vitsplit.model.parts.build_from_parts`` for the
        keyword arguments.
        """
        from .parts import build_from_parts

        return build_from_parts(cls, llm_path, vision_tower_path, **kwargs)
