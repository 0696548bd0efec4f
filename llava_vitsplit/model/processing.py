"""The processor: the tower's image processor + the LLM's tokenizer, with LLaVA's image handling.

It is transformers' ``LlavaProcessor`` (so a ``llava-hf`` processor folder loads into it) with two
changes: images go through LLaVA's ``image_aspect_ratio`` geometry first (``pad`` by default, as
LLaVA-1.5 was trained), and the number of image tokens per image is the patch grid of the
processed image - what every projector here returns (``vision_feature_select_strategy="full"``
adds ``num_additional_image_tokens`` for the CLS/register tokens it keeps).
"""

from __future__ import annotations

import torch
from transformers.image_utils import get_image_size, to_numpy_array
from transformers.models.llava.processing_llava import LlavaProcessor

from llava_vitsplit.constants import IMAGE_TOKEN

from .image_processing import apply_aspect_ratio, as_rgb_image, check_aspect_ratio, output_size


class LlavaViTSplitProcessor(LlavaProcessor):
    """``__call__(text=..., images=...)``: each ``<image>`` in the text becomes ``image_seq_length``
    image tokens; the number of ``<image>`` placeholders must equal the number of images.

    Images are PIL images or paths to image files (a file that cannot be decoded is named).
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        patch_size=None,
        vision_feature_select_strategy="default",
        chat_template=None,
        image_token=IMAGE_TOKEN,
        num_additional_image_tokens=0,
        image_aspect_ratio="pad",
        **kwargs,
    ):
        if tokenizer is not None and image_token not in tokenizer.get_vocab():
            raise ValueError(
                f"the tokenizer has no {image_token!r} token; add it as a special token "
                "(LlavaViTSplitForConditionalGeneration.from_parts does) before building the processor"
            )
        self.image_aspect_ratio = check_aspect_ratio(image_aspect_ratio)
        super().__init__(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=patch_size,
            vision_feature_select_strategy=vision_feature_select_strategy,
            chat_template=chat_template,
            image_token=image_token,
            num_additional_image_tokens=num_additional_image_tokens,
            **kwargs,
        )

    @property
    def image_seq_length(self) -> int:
        """Image tokens per image at the processor's output size."""
        height, width = output_size(self.image_processor)
        return self._tokens_for(height, width)

    def _tokens_for(self, height: int, width: int) -> int:
        extra = self.num_additional_image_tokens if self.vision_feature_select_strategy == "full" else 0
        return (height // self.patch_size) * (width // self.patch_size) + extra

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        height, width = get_image_size(to_numpy_array(image_inputs["pixel_values"][image_idx]))
        return self.image_token * self._tokens_for(height, width)

    def __call__(self, images=None, text=None, **kwargs):
        if images is not None:
            images = [as_rgb_image(image) for image in _flat(images)]
        return super().__call__(images=images, text=text, **kwargs)

    def _process_images(self, images, **kwargs):
        prepared = [apply_aspect_ratio(image, self.image_aspect_ratio, self.image_processor) for image in images]
        return super()._process_images(prepared, **kwargs)

    def process_images(self, images, image_aspect_ratio: str | None = None) -> torch.Tensor:
        """``pixel_values`` ``(N, 3, H, W)`` for a list of images (PIL or paths), LLaVA's ``process_images``."""
        mode = check_aspect_ratio(image_aspect_ratio or self.image_aspect_ratio)
        prepared = [apply_aspect_ratio(as_rgb_image(image), mode, self.image_processor) for image in _flat(images)]
        return self.image_processor(prepared, return_tensors="pt")["pixel_values"]


def _flat(images) -> list:
    if isinstance(images, (list, tuple)):
        return [image for item in images for image in _flat(item)]
    return [images]
