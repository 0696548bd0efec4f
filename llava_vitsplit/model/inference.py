"""Batched inference: (image, prompt) pairs in, answers out.

Prompts are left-padded so every row's answer starts at the same position. Decoding follows a
``GenerationConfig`` (``llava_vitsplit.model.generation.decoding_config``), or, for a quick call, the
keyword knobs: greedy by default, sampling with ``do_sample=True``. Each prompt holds one ``<image>`` per image of its pair
(none for a text-only prompt); any other count is an error, never a silent misalignment.

Prompts are used as given, or rendered by a conversation ``template`` (anything with
``prompt_for(question) -> str``, e.g. ``llava_vitsplit.data.conversation.get_template("vicuna_v1")``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig

from .generation import decoding_config

Request = tuple[Any, str]  # (image | path | list of them | None, prompt)


def generate_answers(
    model,
    processor,
    requests: Sequence[Request],
    *,
    batch_size: int = 8,
    generation_config: GenerationConfig | None = None,
    max_new_tokens: int = 128,
    do_sample: bool = False,
    temperature: float = 0.2,
    top_p: float | None = None,
    num_beams: int = 1,
    seed: int | None = None,
    template=None,
    progress: bool = True,
) -> list[str]:
    """One answer per request, in order; ``generation_config`` wins over the keyword knobs."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if template is not None:
        requests = [(image, template.prompt_for(prompt)) for image, prompt in requests]
    requests = [_checked(index, request, processor.image_token) for index, request in enumerate(requests)]
    if seed is not None:
        torch.manual_seed(seed)
    if generation_config is None:
        generation_config = decoding_config(
            max_new_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0, top_p=top_p, num_beams=num_beams
        )
    if generation_config.pad_token_id is None:  # in the config: generate warns when it comes as a keyword too
        generation_config = copy.deepcopy(generation_config)
        generation_config.pad_token_id = processor.tokenizer.pad_token_id
    # stop strings are matched on decoded text, so generate needs the tokenizer
    tokenizer = {"tokenizer": processor.tokenizer} if generation_config.stop_strings else {}
    device = next(model.parameters()).device
    answers: list[str] = []
    batches = range(0, len(requests), batch_size)
    for start in tqdm(batches, desc="generating", unit="batch", disable=not progress or len(batches) < 2):
        chunk = requests[start : start + batch_size]
        images = [image for request_images, _ in chunk for image in request_images]
        inputs = processor(
            text=[prompt for _, prompt in chunk],
            images=images or None,
            padding=True,
            padding_side="left",
            return_tensors="pt",
        ).to(device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                generation_config=generation_config,
                **tokenizer,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        answers.extend(text.strip() for text in processor.batch_decode(new_tokens, skip_special_tokens=True))
    return answers


def _checked(index: int, request: Request, image_token: str) -> tuple[list, str]:
    image, prompt = request
    images = [] if image is None else list(image) if isinstance(image, (list, tuple)) else [image]
    placeholders = prompt.count(image_token)
    if placeholders != len(images):
        raise ValueError(
            f"request {index}: the prompt has {placeholders} {image_token} placeholder(s) for {len(images)} image(s)"
        )
    return images, prompt
