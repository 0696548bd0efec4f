"""The lmms-eval model `llava_vitsplit`: our checkpoints under lmms-eval's simple-model protocol.

    python -m lmms_eval --model llava_vitsplit --model_args pretrained=PATH[,conv_template=vicuna_v1] \\
        --tasks pope,vqav2_val,mmbench_en_dev --batch_size 8 --output_path results/

lmms-eval finds the class through the entry point in `lmms_entry.py` (pyproject's
`lmms_eval.models` group). Requests are `(context, gen_kwargs | continuation, doc_to_visual,
doc_id, task, split)`. Generation requests with the same generation settings run in batches of
`batch_size`; log-likelihoods are summed over the continuation's tokens (not averaged).
"""

from __future__ import annotations

import logging

import torch
from accelerate import Accelerator
from lmms_eval.api.model import lmms
from lmms_eval.utils import Collator
from PIL import Image
from tqdm.auto import tqdm
from transformers import GenerationConfig

from llava_vitsplit.model.generation import decoding_config

from .inference import DEFAULT_CONV_TEMPLATE, VisualQuestionAnswerer, parse_dtype

logger = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 1024  # what lmms-eval's LLaVA models use when a task sets none
# Keys some lmms-eval tasks send for other LLaVA implementations; ours takes the image geometry from
# the checkpoint's processor and always uses the KV cache, so they are ignored (with a warning).
IGNORED_GEN_KWARGS = frozenset({"image_aspect_ratio", "image_sizes", "use_cache"})


def settings_from_gen_kwargs(gen_kwargs: dict) -> GenerationConfig:
    """lmms-eval's per-task generation kwargs as our settings. Greedy unless the task samples
    (`do_sample: true`, or a temperature > 0 without `do_sample: false`)."""
    kwargs = dict(gen_kwargs)
    until = kwargs.pop("until", ())
    until = (until,) if isinstance(until, str) else tuple(until)
    do_sample = kwargs.pop("do_sample", None)
    temperature = float(kwargs.pop("temperature", 0.0) or 0.0)
    if do_sample is False:
        temperature = 0.0
    elif do_sample and temperature == 0.0:
        temperature = 1.0  # sampling asked without a temperature: HF's default
    settings = decoding_config(
        max_new_tokens=int(kwargs.pop("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
        temperature=temperature,
        top_p=kwargs.pop("top_p", None),
        num_beams=int(kwargs.pop("num_beams", 1)),
        stop_strings=until,
    )
    ignored = sorted(set(kwargs) & IGNORED_GEN_KWARGS)
    if ignored:
        logger.warning("llava_vitsplit ignores the generation kwargs %s", ignored)
    unknown = sorted(set(kwargs) - IGNORED_GEN_KWARGS)
    if unknown:
        raise ValueError(
            f"llava_vitsplit: unsupported generation kwargs {unknown}; supported: until, max_new_tokens, "
            "temperature, top_p, num_beams, do_sample"
        )
    return settings


class LlavaViTSplitLmms(lmms):
    """lmms-eval model over a llava_vitsplit checkpoint (or any checkpoint our loader reads).

    Model args: `pretrained` (checkpoint folder), `model_base` (for LoRA / projector-only
    checkpoints), `conv_template` (default `vicuna_v1`, LLaVA-1.5's), `device`, `dtype`
    (`auto`/`bfloat16`/`float16`/`float32`), `device_map`, `attn_implementation`, `batch_size`,
    `max_batch_size` (caps `batch_size`). Several images per request are read in order (one each
    `<image>` in front of the question); text-only requests work; a video is an error naming the
    document.
    """

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        model_base: str | None = None,
        conv_template: str = DEFAULT_CONV_TEMPLATE,
        device: str | None = None,
        dtype: str | None = "auto",
        device_map: str | None = None,
        attn_implementation: str | None = None,
        batch_size: int | str = 1,
        max_batch_size: int | str | None = None,
        **unknown,
    ) -> None:
        super().__init__()
        if unknown:
            raise TypeError(f"llava_vitsplit: unknown model_args {sorted(unknown)}")
        self.batch_size_per_gpu = _batch_size(batch_size, max_batch_size)
        accelerator = Accelerator()
        if accelerator.num_processes > 1:
            # Data parallel under `accelerate launch`: one full model per process.
            device = f"cuda:{accelerator.local_process_index}"
            self._rank, self._world_size = accelerator.process_index, accelerator.num_processes
        self.accelerator = accelerator
        self.answerer = VisualQuestionAnswerer.from_pretrained(
            pretrained,
            model_base,
            conv_template=conv_template,
            device=device or "cuda",
            torch_dtype=parse_dtype(dtype),
            device_map=device_map,
            attn_implementation=attn_implementation,
        )
        self.pretrained = pretrained

    @property
    def model(self):
        return self.answerer.model

    @property
    def tokenizer(self):
        return self.answerer.tokenizer

    @property
    def device(self) -> torch.device:
        return self.answerer.device

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    def _images(self, doc_to_visual, doc_id, task: str, split: str) -> list[Image.Image]:
        if doc_to_visual is None:
            return []
        visuals = doc_to_visual(self.task_dict[task][split][doc_id]) or []
        if not isinstance(visuals, (list, tuple)):
            visuals = [visuals]
        for visual in visuals:
            if not isinstance(visual, Image.Image):
                raise ValueError(
                    f"llava_vitsplit: task {task!r} document {doc_id} gives a {type(visual).__name__} visual; "
                    "only images (PIL) are supported, not video or audio"
                )
        return [visual.convert("RGB") for visual in visuals]

    def generate_until(self, requests) -> list[str]:
        # Group by generation settings (a batch shares them), longest context first, as lmms-eval's
        # own models do; results go back in request order.
        collator = Collator(
            [request.args for request in requests], lambda args: (-len(args[0]), args[0]), grouping=True
        )
        answers = []
        progress = tqdm(total=len(requests), disable=self.rank != 0, desc="llava_vitsplit generating")
        for batch in collator.get_batched(n=self.batch_size, batch_fn=None):
            contexts, all_gen_kwargs, doc_to_visuals, doc_ids, tasks, splits = zip(*batch)
            images = [self._images(*args) for args in zip(doc_to_visuals, doc_ids, tasks, splits)]
            settings = settings_from_gen_kwargs(all_gen_kwargs[0])
            replies = self.answerer.generate(list(contexts), images, settings)
            for context, gen_kwargs, reply in zip(contexts, all_gen_kwargs, replies):
                self.cache_hook.add_partial("generate_until", (context, gen_kwargs), reply)
            answers.extend(replies)
            progress.update(len(batch))
        progress.close()
        return collator.get_original(answers)

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        results = []
        progress = tqdm(total=len(requests), disable=self.rank != 0, desc="llava_vitsplit log-likelihoods")
        for start in range(0, len(requests), self.batch_size):
            batch = [request.args for request in requests[start : start + self.batch_size]]
            contexts, continuations, images = [], [], []
            for context, target, doc_to_visual, doc_id, task, split in batch:
                doc = self.task_dict[task][split][doc_id]
                contexts.append(context)
                continuations.append(target if isinstance(target, str) else target(doc))
                images.append(self._images(doc_to_visual, doc_id, task, split))
            results.extend(self.answerer.loglikelihood(contexts, continuations, images))
            progress.update(len(batch))
        progress.close()
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError(
            "llava_vitsplit does not support multi-round generation (generate_until_multi_round); "
            "use single-turn generation tasks"
        )


def _batch_size(batch_size: int | str, max_batch_size: int | str | None) -> int:
    if isinstance(batch_size, str) and batch_size.startswith("auto"):
        raise ValueError(
            "llava_vitsplit: batch_size 'auto' is not supported; give a number (e.g. --batch_size 8)"
        )
    size = int(batch_size)
    if max_batch_size is not None:
        size = min(size, int(max_batch_size))
    if size < 1:
        raise ValueError(f"llava_vitsplit: batch_size must be >= 1, got {batch_size}")
    return size
