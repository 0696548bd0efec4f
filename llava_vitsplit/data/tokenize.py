"""Token ids and label masks for one templated conversation.

The whole conversation is tokenised once, as it will be seen at inference. Label boundaries are
found by tokenising each prefix that ends at a boundary and checking that its ids are a prefix of
the full ids: then the boundary falls between two tokens and the mask is exact, whatever the
tokenizer does with leading spaces. If a boundary falls inside a token, that is a tokenization
mismatch and an error (LLaVA instead masks the whole sample silently and trains on nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llava_vitsplit.constants import IMAGE_TOKEN

from .conversation import Segment

IGNORE_INDEX = -100


class TokenizationMismatchError(ValueError):
    """A label boundary falls inside a token, so the mask cannot line up with the ids."""


class TooLongError(ValueError):
    """After truncation to `model_max_length` nothing usable is left (image cut or no labels)."""


@dataclass(frozen=True)
class TokenizedConversation:
    input_ids: list[int]
    labels: list[int]
    truncated_from: int | None  # the length before truncation, or None if it fitted

    @property
    def num_supervised(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def special_wrapping(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after any text (e.g. LLaMA's BOS)."""
    probe = "a"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    wrapped = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(wrapped) - len(bare) + 1):
        if wrapped[start : start + len(bare)] == bare:
            return list(wrapped[:start]), list(wrapped[start + len(bare) :])
    raise ValueError(f"cannot find how {type(tokenizer).__name__} wraps text in special tokens")


def _ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_conversation(
    segments: Sequence[Segment],
    tokenizer,
    *,
    image_token_id: int,
    image_seq_length: int,
    num_images: int,
    max_length: int | None = None,
) -> TokenizedConversation:
    """Ids and labels for `segments`; each `<image>` becomes `image_seq_length` copies of its id.

    The leading special tokens (BOS) are kept and never supervised; trailing ones (an automatic EOS)
    are dropped, since templates end every reply with the EOS themselves. With `max_length` the
    sample is cut from the right; it is an error if that cuts into the image or leaves no label.
    """
    text = "".join(segment.text for segment in segments)
    lead, _ = special_wrapping(tokenizer)
    full = _ids(tokenizer, text)
    # Token count at the end of each segment, checked to be a clean token boundary.
    ends, offset = [], 0
    for position, segment in enumerate(segments):
        offset += len(segment.text)
        if position == len(segments) - 1:
            ends.append(len(full))
            break
        prefix = _ids(tokenizer, text[:offset])
        if full[: len(prefix)] != prefix:
            raise TokenizationMismatchError(
                f"tokenization mismatch: the boundary after {text[max(0, offset - 30) : offset]!r} falls "
                f"inside a token, so labels cannot line up with the input ids"
            )
        ends.append(len(prefix))

    input_ids, labels = list(lead), [IGNORE_INDEX] * len(lead)
    start = 0
    for segment, end in zip(segments, ends):
        for token in full[start:end]:
            if token == image_token_id:
                input_ids.extend([image_token_id] * image_seq_length)
                labels.extend([IGNORE_INDEX] * image_seq_length)
            else:
                input_ids.append(token)
                labels.append(token if segment.supervised else IGNORE_INDEX)
        start = end

    found = full.count(image_token_id)
    if found != num_images:
        if IMAGE_TOKEN in text and found == 0:
            raise ValueError(
                f"the tokenizer does not map {IMAGE_TOKEN!r} to one token (id {image_token_id}); "
                "use the tokenizer saved with the model, which has it as a special token"
            )
        raise ValueError(f"expected {num_images} image token(s) after tokenization, found {found}")

    truncated_from = None
    if max_length is not None and len(input_ids) > max_length:
        truncated_from = len(input_ids)
        if num_images and max(i for i, t in enumerate(input_ids) if t == image_token_id) >= max_length:
            raise TooLongError(
                f"{truncated_from} tokens: model_max_length={max_length} cuts into the image's "
                f"{image_seq_length} tokens"
            )
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    result = TokenizedConversation(input_ids, labels, truncated_from)
    if result.num_supervised == 0:
        if truncated_from is not None:
            raise TooLongError(
                f"{truncated_from} tokens: truncating to model_max_length={max_length} leaves no supervised token"
            )
        raise ValueError("the sample has no supervised token")
    return result
