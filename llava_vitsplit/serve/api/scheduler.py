"""Batched generation for the API server: requests that wait together are generated together.

One worker thread owns the model. Requests wait in a bounded queue (a full queue is refused at
once, never grown); whenever the model is free the worker takes up to `max_batch_size` waiting
requests that can share one `generate` call - same decoding mode, see `GenerationJob.batch_key` -
left-pads their prompts (as `llava_vitsplit.model.inference.generate_answers` does) and runs them
as one batch. This is static batching: a request arriving mid-batch waits for the next one.

Each row of a batch streams on its own and stops on its own: `BatchProgress`, a stopping criterion
that transformers calls after every step, hands each row's new text to its request, and marks a
row finished at the EOS token, at a stop string, at the request's own token limit, or when its
client went away. transformers stops a batch once every row is finished, so a disconnected
client's row costs nothing more, and when it was alone the worker moves on to the next request.
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

logger = logging.getLogger(__name__)

# Finish reasons, OpenAI's names; "cancelled" is ours (the client went away: nobody reads it).
STOP, LENGTH, CANCELLED = "stop", "length", "cancelled"
_job_ids = itertools.count()


class QueueFull(Exception):
    """The bounded queue of waiting requests is full."""


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    reason: str  # STOP, LENGTH or CANCELLED
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = Delta | Finished | Failed


@dataclass(eq=False)  # a job is itself: `in` and `remove` on the queue compare identity
class GenerationJob:
    """One request: its prompt ids `(L,)`, its images `(k, 3, H, W)` or None, how to decode, and
    `sink`, called from the worker thread with each `Event`."""

    input_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    config: GenerationConfig  # do_sample, temperature, top_p, max_new_tokens of this request
    sink: Callable[[Event], None]
    stop: tuple[str, ...] = ()
    seed: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    id: int = field(default_factory=lambda: next(_job_ids))

    @property
    def batch_key(self) -> tuple:
        """Jobs with equal keys can share a `generate` call. Greedy jobs all batch together; sampled
        ones when temperature and top-p agree; a seeded sampled job runs alone, so that its seed
        decides its answer whatever else was waiting."""
        if not self.config.do_sample:
            return ("greedy",)
        if self.seed is not None:
            return ("seeded", self.id)
        return ("sample", self.config.temperature, self.config.top_p)

    def cancel(self) -> None:
        self.cancelled.set()


class _Row:
    """One job's progress inside a batch: its new tokens, the text handed out, whether it is done."""

    def __init__(self, job: GenerationJob):
        self.job = job
        self.tokens: list[int] = []
        self.sent = ""
        self.reason: str | None = None  # set when done

    @property
    def done(self) -> bool:
        return self.reason is not None

    def finish(self, reason: str, text: str | None = None) -> None:
        if text is not None and reason != CANCELLED:
            self.send(text, final=True)
        self.reason = reason
        self.job.sink(Finished(reason, len(self.tokens)))

    def send(self, text: str, *, final: bool = False) -> None:
        """Hand out what `text` adds to what was sent; hold back a possible start of a stop string
        and a half-decoded character (they may still turn out otherwise) unless `final`."""
        ready = text if final else text[: len(text) - _held_back(text, self.job.stop)]
        if ready.startswith(self.sent) and len(ready) > len(self.sent):
            self.job.sink(Delta(ready[len(self.sent) :]))
            self.sent = ready


def _held_back(text: str, stops: Sequence[str]) -> int:
    # A trailing U+FFFD may be a character whose bytes are still coming: wait for the next token.
    longest = 1 if text.endswith("\ufffd") else 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                longest = max(longest, size)
                break
    return longest


class BatchProgress(StoppingCriteria):
    """Called by `generate` after each step: streams every row and says which rows are finished."""

    def __init__(self, jobs: Sequence[GenerationJob], decode: Callable[[list[int]], str], eos_ids: set[int]):
        self.rows = [_Row(job) for job in jobs]
        self.decode = decode
        self.eos_ids = eos_ids

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        for row, token in zip(self.rows, input_ids[:, -1].tolist()):
            if not row.done:
                self._advance(row, token)
        return torch.tensor([row.done for row in self.rows], device=input_ids.device)

    def _advance(self, row: _Row, token: int) -> None:
        if row.job.cancelled.is_set():
            return row.finish(CANCELLED)
        row.tokens.append(token)
        if token in self.eos_ids:
            return row.finish(STOP, self._text(row, row.tokens[:-1]))
        text = self._text(row, row.tokens)
        cut = min((index for index in (text.find(stop) for stop in row.job.stop) if index >= 0), default=-1)
        if cut >= 0:
            return row.finish(STOP, text[:cut])
        if len(row.tokens) >= row.job.config.max_new_tokens:
            return row.finish(LENGTH, text)
        row.send(text)

    def _text(self, row: _Row, tokens: list[int]) -> str:
        return self.decode(tokens).lstrip()

    def finish_rest(self) -> None:
        """After `generate` returned: rows it ended (the batch's token limit) end with their text."""
        for row in self.rows:
            if not row.done:
                row.finish(CANCELLED if row.job.cancelled.is_set() else LENGTH, self._text(row, row.tokens))


class BatchScheduler:
    """The worker thread and its bounded queue. `submit` a job; its events reach `job.sink`."""

    def __init__(self, model, tokenizer, *, max_batch_size: int = 8, max_queue: int = 64,
                 batch_wait_s: float = 0.01, tokenizer_lock: threading.Lock | None = None):
        if max_batch_size < 1 or max_queue < 0 or batch_wait_s < 0:
            raise ValueError(f"need max_batch_size >= 1, max_queue >= 0, batch_wait_s >= 0; got {max_batch_size}, "
                             f"{max_queue}, {batch_wait_s}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self.batch_wait_s = batch_wait_s
        self.tokenizer_lock = tokenizer_lock or threading.Lock()
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id
        eos = tokenizer.eos_token_id if eos is None else eos
        self.eos_ids = set(eos) if isinstance(eos, (list, tuple)) else {eos}
        self._pending: deque[GenerationJob] = deque()
        self._changed = threading.Condition()
        self._stopping = False
        self.running = 0  # jobs in the batch being generated
        self._thread = threading.Thread(target=self._loop, name="api-generate", daemon=True)

    # -- the request side ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=60)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, job: GenerationJob) -> None:
        with self._changed:
            if len(self._pending) >= self.max_queue:
                raise QueueFull
            self._pending.append(job)
            self._changed.notify_all()

    def withdraw(self, job: GenerationJob) -> None:
        """Cancel `job`: dropped from the queue if it still waits, else its row stops at the next token."""
        job.cancel()
        with self._changed:
            if job in self._pending:
                self._pending.remove(job)
                job.sink(Finished(CANCELLED, 0))

    # -- the worker ---------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if batch:
                self._run(batch)

    def _next_batch(self) -> list[GenerationJob] | None:
        with self._changed:
            while not self._pending and not self._stopping:
                self._changed.wait()
            if self._stopping:
                return None
        time.sleep(self.batch_wait_s)  # let requests sent together arrive together
        with self._changed:
            if not self._pending:  # every waiting job was withdrawn meanwhile
                return []
            key = self._pending[0].batch_key
            batch = [job for job in self._pending if job.batch_key == key][: self.max_batch_size]
            for job in batch:
                self._pending.remove(job)
            self.running = len(batch)
        return batch

    def _run(self, jobs: list[GenerationJob]) -> None:
        progress = BatchProgress(jobs, self._decode, self.eos_ids)
        started = time.perf_counter()
        try:
            inputs = self._batch_inputs(jobs)
            config = copy.deepcopy(jobs[0].config)
            config.max_new_tokens = max(job.config.max_new_tokens for job in jobs)
            config.pad_token_id = self.pad_token_id
            if jobs[0].seed is not None:
                torch.manual_seed(jobs[0].seed)
            with torch.inference_mode():
                self.model.generate(**inputs, generation_config=config,
                                    stopping_criteria=StoppingCriteriaList([progress]))
            progress.finish_rest()
        except Exception as error:  # the model failed on this batch: its requests get the error, the server goes on
            logger.exception("generation failed for a batch of %d", len(jobs))
            for row in progress.rows:
                if not row.done:
                    row.reason = "failed"
                    row.job.sink(Failed(error))
        finally:
            self.running = 0
        tokens = sum(len(row.tokens) for row in progress.rows)
        seconds = time.perf_counter() - started
        logger.info("batch of %d: %d new tokens in %.2f s (%.1f tokens/s); rows: %s", len(jobs), tokens, seconds,
                    tokens / max(seconds, 1e-9),
                    ", ".join(f"{len(row.tokens)} tokens ({row.reason})" for row in progress.rows))

    def _batch_inputs(self, jobs: list[GenerationJob]) -> dict[str, torch.Tensor]:
        """Prompts left-padded to one length (every row's answer starts at the same position)."""
        length = max(len(job.input_ids) for job in jobs)
        input_ids = torch.full((len(jobs), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(jobs), length), dtype=torch.long)
        for row, job in enumerate(jobs):
            input_ids[row, length - len(job.input_ids) :] = job.input_ids
            attention_mask[row, length - len(job.input_ids) :] = 1
        device = next(self.model.parameters()).device
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        images = [job.pixel_values for job in jobs if job.pixel_values is not None]
        if images:  # in row order: the order of the placeholders across the batch
            inputs["pixel_values"] = torch.cat(images).to(device, self.model.model.vision_tower.dtype)
        return inputs

    def _decode(self, tokens: list[int]) -> str:
        with self.tokenizer_lock:
            return self.tokenizer.decode(tokens, skip_special_tokens=True)
