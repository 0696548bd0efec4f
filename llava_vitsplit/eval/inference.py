"""Benchmark questions to model inputs and back, shared by `eval answer` and the lmms-eval model.

A question (LLaVA's `text` field, or an lmms-eval context) becomes a prompt as LLaVA's
`model_vqa_loader` builds it: `<image>\\n` in front of the question (unless the question already
holds it), one user turn of the conversation template, and the assistant's turn left open. The
processor expands each `<image>` to the model's image tokens.

Generation is the model package's batched `generate_answers` (left padding) under a transformers
`GenerationConfig` (`llava_vitsplit.model.generation.decoding_config`); answers are then cut at its
stop strings. Log-likelihoods pad on the right instead: a plain forward pass
numbers positions from 0 whatever the mask, which is right for the real tokens only when the
padding comes after them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import GenerationConfig

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.data.conversation import get_template
from llava_vitsplit.model.generation import decoding_config
from llava_vitsplit.model.inference import generate_answers

DEFAULT_CONV_TEMPLATE = "vicuna_v1"  # LLaVA-1.5's eval scripts pass --conv-mode vicuna_v1


# LLaVA's eval scripts: greedy, 128 new tokens at most
EVAL_DECODING = dict(max_new_tokens=128, temperature=0.0)


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def parse_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    """A torch dtype from its name ("bfloat16", "torch.float16", ...); None or "auto" -> None (the loader
    picks bf16/fp16 on a GPU, fp32 on the CPU)."""
    if name is None or isinstance(name, torch.dtype):
        return name
    key = name.removeprefix("torch.")
    if key == "auto":
        return None
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose one of {sorted(DTYPES)} or 'auto'")
    return DTYPES[key]


def cut_at_stop_strings(text: str, until: Sequence[str]) -> str:
    """`text` up to the first occurrence of any stop string."""
    cut = min((index for index in (text.find(stop) for stop in until) if index >= 0), default=len(text))
    return text[:cut]


class VisualQuestionAnswerer:
    """A model and its processor answering questions about images, in batches.

    `model` is a LLaVA-layout model (`generate` and `forward` take `input_ids`, `attention_mask`,
    `pixel_values`); `processor` expands `<image>` in the text and turns images into `pixel_values`
    (`LlavaViTSplitProcessor`). One image per question is how LLaVA-1.5 was trained; several are
    read in order; a question without images is answered from its text.
    """

    def __init__(self, model, processor, conv_template: str = DEFAULT_CONV_TEMPLATE):
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.template = get_template(conv_template)
        if self.tokenizer.pad_token_id is None:
            raise ValueError(
                "the tokenizer has no pad token; batched inference needs one (LLaVA pads with <unk>)"
            )

    @classmethod
    def from_pretrained(
        cls,
        model_path,
        model_base=None,
        *,
        conv_template: str = DEFAULT_CONV_TEMPLATE,
        device: str = "cuda",
        torch_dtype: torch.dtype | None = None,
        **load_kwargs,
    ) -> VisualQuestionAnswerer:
        """Load any checkpoint `llava_vitsplit.model.builder.load_pretrained_model` reads (ours,
        llava-hf, original LLaVA, LoRA or projector over `model_base`). `device="cuda"` without a
        GPU falls back to the CPU; the dtype defaults to bf16/fp16 on a GPU and fp32 on the CPU."""
        from llava_vitsplit.model.builder import load_model

        model, processor = load_model(
            model_path, model_base, device=device, torch_dtype=torch_dtype, **load_kwargs
        )
        return cls(model, processor, conv_template)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prompt(self, question: str, num_images: int) -> str:
        """The model input for one question with `num_images` images: the question's own `<image>`
        placeholders if it has one per image, else one `<image>\\n` per image in front of it."""
        placeholders = question.count(IMAGE_TOKEN)
        if placeholders and placeholders != num_images:
            raise ValueError(
                f"the question holds {placeholders} {IMAGE_TOKEN} but {num_images} images were given"
            )
        if num_images and not placeholders:
            question = f"{IMAGE_TOKEN}\n" * num_images + question
        return self.template.prompt_for(question)

    def generate(
        self, questions: Sequence[str], images: Sequence[Sequence], settings: GenerationConfig | None = None
    ) -> list[str]:
        """One answer per question, generated as one batch; `images[i]` holds question i's images.
        Each answer is cut at the first of `settings.stop_strings` (generation also stops there)."""
        settings = settings or decoding_config(**EVAL_DECODING)
        if len(questions) != len(images):
            raise ValueError(f"{len(questions)} questions but {len(images)} image lists")
        requests = [(list(row), self.prompt(question, len(row))) for question, row in zip(questions, images)]
        answers = generate_answers(
            self.model,
            self.processor,
            requests,
            batch_size=max(1, len(requests)),
            progress=False,
            generation_config=settings,
        )
        return [cut_at_stop_strings(answer, settings.stop_strings or ()).strip() for answer in answers]

    @torch.inference_mode()
    def loglikelihood(
        self, questions: Sequence[str], continuations: Sequence[str], images: Sequence[Sequence]
    ) -> list[tuple[float, bool]]:
        """For each question, the summed log-probability of its continuation after the prompt, and
        whether greedy decoding would produce exactly the continuation's tokens.

        The continuation is the tail of the tokenised prompt + continuation after the prompt's own
        tokens (lm-evaluation-harness's split), so a token spanning the boundary belongs to it.
        """
        if not len(questions) == len(continuations) == len(images):
            raise ValueError("questions, continuations and images must have the same length")
        prompts = [self.prompt(question, len(row)) for question, row in zip(questions, images)]
        context_lengths = [
            len(self.processor(text=[prompt], images=list(row) or None)["input_ids"][0])
            for prompt, row in zip(prompts, images)
        ]
        full = [prompt + continuation for prompt, continuation in zip(prompts, continuations)]
        flat_images = [image for row in images for image in row]
        inputs = self.processor(
            text=full, images=flat_images or None, padding=True, padding_side="right", return_tensors="pt"
        ).to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        logprobs = torch.log_softmax(self.model(**inputs).logits.float(), dim=-1)
        results = []
        for row, context_length in enumerate(context_lengths):
            length = int(inputs["attention_mask"][row].sum())
            if length <= context_length:
                raise ValueError(f"continuation {continuations[row]!r} adds no tokens to its prompt")
            targets = inputs["input_ids"][row, context_length:length]
            predicted = logprobs[row, context_length - 1 : length - 1]
            total = predicted.gather(-1, targets[:, None]).sum().item()
            results.append((total, bool((predicted.argmax(-1) == targets).all())))
        return results
