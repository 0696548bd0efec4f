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
from torch import nn
from transformers import AutoModel
from transformers.cache_utils import Cache
from transformers.conversion_mapping import (
    get_checkpoint_conversion_mapping,
    register_checkpoint_conversion_mapping,
)
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.llava.modeling_llava import (
    LlavaForConditionalGeneration,
    LlavaModel,
    LlavaModelOutputWithPast,
    LlavaPreTrainedModel,
)
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.safe_files import check_weights_folder, named_pickle_errors
from llava_vitsplit.split import ViTSplitHeads, adapt_backbone, frozen_hidden_states
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
        # The task head's blocks are copies of the tower's: the tower's own initialiser knows their
        # parts (DINOv2's layer scale, for one). It marks what it initialised, so the generic pass
        # below leaves them alone, as it leaves weights loaded from a checkpoint.
        for module in self.modules():
            if isinstance(module, ViTSplitHeads):
                module.task_head.apply(module.adapter.model._initialize_weights)
        super().initialize_weights()

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' generic init; then a module from outside ``torch.nn`` that has a
        ``reset_parameters`` hook initialises itself: the zero offset conv of DCNv1, the
        deformable kernel, the sparse gate, or whatever replaces them. transformers guards
        ``torch.nn.init`` here, so weights loaded from a checkpoint are left alone."""
        super()._init_weights(module)
        if hasattr(module, "reset_parameters") and not type(module).__module__.startswith("torch.nn"):
            module.reset_parameters()


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

    @can_return_tuple
    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Projected image features, one ``(tokens, llm_width)`` tensor per image in ``pooler_output``.

        Only ``pooler_output`` is filled: the tower runs no further than the deepest hidden state the
        projector reads, so there is no ``last_hidden_state``. ``return_dict=False`` gives
        ``(pooler_output,)``.
        """
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

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")  # as the parent: the old name still works
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        image_sizes: torch.Tensor | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        **kwargs,
    ) -> tuple | LlavaModelOutputWithPast:
        """transformers' ``LlavaModel.forward`` (same arguments), refusing image tokens without images."""
        if pixel_values is None and mm_encoder_outputs is None:
            self._check_no_image_tokens(input_ids, cache)
        return super().forward(
            input_ids=input_ids,
            pixel_values=pixel_values,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            image_sizes=image_sizes,
            mm_encoder_outputs=mm_encoder_outputs,
            **kwargs,
        )

    def _check_no_image_tokens(self, input_ids: torch.LongTensor | None, cache: Cache | None) -> None:
        """A prompt (an empty cache) with image tokens but no images is an error, where transformers would
        embed the placeholders as text. Decoding steps are not checked (a model may emit the token), and
        neither is a compiled forward: the check reads data, and a static cache's length is a tensor."""
        if input_ids is None or torch.compiler.is_compiling():
            return
        if cache is not None and int(cache.get_seq_length()) > 0:
            return
        count = int((input_ids == self.config.image_token_id).sum())
        if count:
            raise ValueError(
                f"input_ids hold {count} image tokens (id {self.config.image_token_id}) but no pixel_values "
                f"were given; pass the images or drop the {IMAGE_TOKEN} placeholders"
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
