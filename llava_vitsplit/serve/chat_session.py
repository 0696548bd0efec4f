"""Chat with a loaded model: conversation state, prompt building, streamed generation.

One home for what the Gradio demo and the terminal chat share. `Conversation` is plain state (the
images, alternating turns) that a web session can keep; `ChatEngine` holds the model and turns a
conversation plus a new question into a reply streamed as it is generated.

Generation runs `model.generate` in a worker thread feeding a `TextIteratorStreamer`; the caller
iterates over the growing reply. Stopping the iteration early (a closed browser tab) stops the
worker at the next token, and an error inside `generate` is raised in the caller, not lost in the
thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.data.conversation import (
    ASSISTANT,
    USER,
    ConversationTemplate,
    Turn,
    get_template,
)

from .errors import ChatInputError
from .image_input import UserImage

logger = logging.getLogger(__name__)


@dataclass
class Conversation:
    """Images and the finished turns about them, user first, alternating.

    Images can come with any question: `attach` them and they go with the next question, one
    `<image>` each in front of it (a single image per turn is where LLaVA-1.5 was trained to see
    it). Each recorded user turn keeps its placeholders, so `images` lines up with them in order.
    """

    images: list[UserImage] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)

    def start_over(self, *images: UserImage) -> None:
        self.images = list(images)
        self.turns = []

    def attach(self, image: UserImage) -> None:
        self.images.append(image)

    @property
    def pending_images(self) -> int:
        """Images attached since the last question (they go with the next one)."""
        return len(self.images) - sum(turn.text.count(IMAGE_TOKEN) for turn in self.turns)

    @property
    def last_question(self) -> str | None:
        return self.turns[-2].text if len(self.turns) >= 2 else None

    def user_turn(self, question: str) -> Turn:
        """`question` as the next user turn: the pending images' placeholders, then the text."""
        return Turn(USER, f"{IMAGE_TOKEN}\n" * self.pending_images + question)

    def messages_for(self, question: str) -> list[Turn]:
        """The turns the model reads: history plus `question` with the images that go with it."""
        return [*self.turns, self.user_turn(question)]


def clean_question(text: str | None) -> str:
    """The user's text, stripped; a literal `<image>` would ask for a second image, so it goes."""
    question = (text or "").replace(IMAGE_TOKEN, "").strip()
    if not question:
        raise ChatInputError("The message is empty: type a question about the image.")
    return question


def model_name_from_path(model_path: str) -> str:
    """The folder name; for a `checkpoint-N` folder, its parent's name too (LLaVA's convention)."""
    parts = Path(model_path).resolve().parts
    return "/".join(parts[-2:]) if parts[-1].startswith("checkpoint-") else parts[-1]


class _StopWhenSet(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class ChatEngine:
    """A model, its processor (image processor + tokenizer), a conversation template, a context size."""

    def __init__(
        self, model, processor, template: ConversationTemplate | str, context_len: int, *, model_name: str = "model"
    ):
        self.model = model.eval()
        self.model_name = model_name
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.template = get_template(template) if isinstance(template, str) else template
        if context_len < 2:
            raise ValueError(f"context_len must be at least 2 tokens, got {context_len}")
        self.context_len = int(context_len)
        pad = self.tokenizer.pad_token_id
        self._pad_token_id = pad if pad is not None else self.tokenizer.eos_token_id

    @classmethod
    def from_pretrained(
        cls,
        model_path: str,
        model_base: str | None = None,
        *,
        conv_mode: str = "v1",
        device: str | None = None,
        load_8bit: bool = False,
        load_4bit: bool = False,
    ) -> ChatEngine:
        """Load any checkpoint `load_pretrained_model` takes (LoRA and projector-only folders need `model_base`).

        `device` None picks the GPU when there is one (bf16, else fp16) and the CPU otherwise (fp32).
        """
        from llava_vitsplit.model.builder import load_model

        model, processor = load_model(model_path, model_base, load_8bit=load_8bit, load_4bit=load_4bit, device=device)
        context_len = getattr(model.config.text_config, "max_position_embeddings", None) or processor.tokenizer.model_max_length
        return cls(model, processor, conv_mode, context_len, model_name=model_name_from_path(model_path))

    # -- prompt and inputs ------------------------------------------------------------------

    def build_prompt(self, conversation: Conversation, question: str) -> str:
        try:
            return self.template.prompt_for(conversation.messages_for(question), eos_token=self.tokenizer.eos_token)
        except ValueError as error:  # e.g. the stage-1 "plain" template takes one image and one caption
            raise ChatInputError(f"The {self.template.name!r} prompt format cannot take this: {error}") from error

    def prepare_inputs(self, conversation: Conversation, question: str) -> tuple[dict, int]:
        """Model inputs on the model's device, and the room left for the reply (in tokens)."""
        prompt = self.build_prompt(conversation, question)
        images = [image.image for image in conversation.images] or None
        inputs = self.processor(text=prompt, images=images, return_tensors="pt")
        prompt_len = inputs["input_ids"].shape[1]
        room = self.context_len - prompt_len
        if room < 1:
            image_tokens = int((inputs["input_ids"] == self.model.config.image_token_id).sum())
            which = "the image" if len(conversation.images) == 1 else f"{len(conversation.images)} images"
            raise ChatInputError(
                f"The conversation is {prompt_len} tokens long ({image_tokens} of them for {which}) and the "
                f"model reads at most {self.context_len}. Send a shorter message, or clear the chat to start over."
            )
        device = self.model.device
        inputs = {name: value.to(device) for name, value in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.model.vision_tower.dtype)
        return inputs, room

    # -- generation ---------------------------------------------------------------------------

    def reply(self, conversation: Conversation, question: str, settings: GenerationConfig) -> Iterator[str]:
        """Stream the answer to `question` (the reply so far, growing); record both turns at the end.

        A reply cut short by the caller is recorded as far as it went, so what the user saw and
        what the model reads next agree. Input problems raise `ChatInputError` before anything runs.
        """
        question = clean_question(question)
        inputs, room = self.prepare_inputs(conversation, question)
        reply = ""
        # the room left in the context caps the reply (a generate argument wins over the config)
        pieces = self._generate(
            inputs, {"generation_config": settings, "max_new_tokens": min(settings.max_new_tokens, room)}
        )
        keep = False
        try:
            for piece in pieces:
                reply += piece
                yield reply.strip()
            keep = True
        except (GeneratorExit, KeyboardInterrupt):  # stopped by the reader (Stop, Ctrl-C): keep what it showed
            keep = True
            raise
        finally:
            pieces.close()  # stops the worker at its next token
            if keep:
                conversation.turns += [conversation.user_turn(question), Turn(ASSISTANT, reply.strip())]

    def regenerate(self, conversation: Conversation, settings: GenerationConfig) -> Iterator[str]:
        """Answer the last question again (sampling gives a new answer when temperature > 0)."""
        question = conversation.last_question
        if question is None:
            raise ChatInputError("There is no answer to regenerate yet: ask a question first.")
        previous = conversation.turns[-2:]
        del conversation.turns[-2:]  # its images are pending again and go with the question once more
        try:
            yield from self.reply(conversation, question, settings)
        except Exception:  # nothing new was recorded: put the old answer back
            conversation.turns += previous
            raise

    def _generate(self, inputs: dict, generate_kwargs: dict) -> Iterator[str]:
        streamer = _ReplyStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        failures: list[BaseException] = []

        def run() -> None:
            try:
                self.model.generate(
                    **inputs,
                    **generate_kwargs,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopWhenSet(stop)]),
                    pad_token_id=self._pad_token_id,
                )
            except BaseException as error:  # handed to the caller's thread below
                failures.append(error)
                streamer.end()

        logger.info("generating: %d prompt tokens, at most %d new",
                    inputs["input_ids"].shape[1], generate_kwargs["max_new_tokens"])
        started = time.perf_counter()
        worker = threading.Thread(target=run, name="chat-generate", daemon=True)
        worker.start()
        try:
            yield from streamer.chunks()
        finally:
            stopped_early = not streamer.finished
            stop.set()
            worker.join()
            seconds = time.perf_counter() - started
            logger.info("generated %d tokens in %.2f s (%.1f tokens/s)%s", streamer.new_tokens, seconds,
                        streamer.new_tokens / max(seconds, 1e-9), " - stopped early" if stopped_early else "")
        if failures:
            raise failures[0]


class _ReplyStreamer(TextIteratorStreamer):
    """A `TextIteratorStreamer` that hands over text in catch-up chunks, counts the new tokens (for
    the log) and knows whether generation ended."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.new_tokens = 0
        self.finished = False

    def put(self, value) -> None:
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            self.new_tokens += value.numel()
        super().put(value)

    def end(self) -> None:
        self.finished = True
        super().end()

    def chunks(self) -> Iterator[str]:
        """The new text as it comes. Whatever else is already waiting joins it, so a reader slower
        than the model (a web page costs tens of ms per update) catches up instead of lagging ever
        further behind; a reader faster than the model gets every token on its own."""
        while True:
            pieces = [self.text_queue.get()]
            while pieces[-1] is not self.stop_signal and not self.text_queue.empty():
                pieces.append(self.text_queue.get_nowait())
            ended = pieces[-1] is self.stop_signal
            text = "".join(piece for piece in pieces if piece is not self.stop_signal)
            if text:
                yield text
            if ended:
                return
