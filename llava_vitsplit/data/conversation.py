"""Conversation templates: LLaVA's `plain` (stage 1) and `v1` / `vicuna_v1` (stage 2).

A template turns a list of turns into text pieces, each flagged as supervised or not. The same
pieces serve training (the tokenizer turns them into ids and labels, see `data/tokenize.py`) and
inference (`prompt_for` renders the pieces of a conversation that ends with the user's turn).

The end-of-reply separator is the tokenizer's EOS token, passed in by the caller: Vicuna's
`</s>`, SmolLM2's `<|im_end|>`, whatever the LLM was trained to stop on. LLaVA hard-codes `</s>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from llava_vitsplit.constants import IMAGE_TOKEN

USER = "user"
ASSISTANT = "assistant"

# LLaVA's data uses "human"/"gpt"; HF chat messages use "user"/"assistant".
_ROLE_ALIASES = {"human": USER, "user": USER, "gpt": ASSISTANT, "assistant": ASSISTANT}


@dataclass(frozen=True)
class Turn:
    role: str  # USER or ASSISTANT
    text: str

    def __post_init__(self) -> None:
        if self.role not in (USER, ASSISTANT):
            raise ValueError(f"turn role must be {USER!r} or {ASSISTANT!r}, got {self.role!r}")
        if not isinstance(self.text, str):
            raise ValueError(f"turn text must be a string, got {type(self.text).__name__}")


@dataclass(frozen=True)
class Segment:
    """A piece of the rendered conversation; `supervised` pieces get labels, the rest get -100."""

    text: str
    supervised: bool


def to_turns(messages: str | Sequence[Mapping[str, str] | Turn]) -> list[Turn]:
    """Normalise a question string, LLaVA turns ({"from", "value"}) or HF messages ({"role", "content"})."""
    if isinstance(messages, str):
        return [Turn(USER, messages)]
    turns = []
    for position, message in enumerate(messages):
        if isinstance(message, Turn):
            turns.append(message)
            continue
        if not isinstance(message, Mapping):
            raise ValueError(f"turn {position}: expected a dict, got {type(message).__name__}")
        raw_role = message.get("from", message.get("role"))
        text = message.get("value", message.get("content"))
        if raw_role not in _ROLE_ALIASES:
            raise ValueError(
                f"turn {position}: unknown speaker {raw_role!r} (expected one of {sorted(_ROLE_ALIASES)})"
            )
        if not isinstance(text, str):
            raise ValueError(f"turn {position}: 'value' must be a string, got {type(text).__name__}")
        turns.append(Turn(_ROLE_ALIASES[raw_role], text))
    return turns


def check_alternation(turns: Sequence[Turn]) -> None:
    """Turns must start with the user and alternate user/assistant."""
    if not turns:
        raise ValueError("the conversation has no turns")
    for position, turn in enumerate(turns):
        expected = USER if position % 2 == 0 else ASSISTANT
        if turn.role != expected:
            raise ValueError(f"turn {position} is from {turn.role!r}; expected {expected!r} (turns must alternate)")


def move_image_to_front(turns: Sequence[Turn]) -> list[Turn]:
    """LLaVA convention: a turn holding one `<image>` starts with `<image>\\n`, the rest stripped.

    A turn holding several images keeps them where they are (LLaVA-NeXT's rule for interleaved
    images): their order among the words ("the first picture ... the second ...") is the meaning.
    """
    moved = []
    for turn in turns:
        if turn.text.count(IMAGE_TOKEN) == 1:
            rest = turn.text.replace(IMAGE_TOKEN, "").strip()
            turn = Turn(turn.role, f"{IMAGE_TOKEN}\n{rest}" if rest else IMAGE_TOKEN)
        moved.append(turn)
    return moved


@dataclass(frozen=True)
class ConversationTemplate:
    """One prompt format. `style` is "plain" (image -> caption) or "two_roles" (Vicuna chat)."""

    name: str
    style: str
    system: str = ""
    user_role: str = "USER"
    assistant_role: str = "ASSISTANT"
    turn_sep: str = " "  # after a user turn (and after the system prompt)

    def __post_init__(self) -> None:
        if self.style not in ("plain", "two_roles"):
            raise ValueError(f"template {self.name!r}: unknown style {self.style!r}")

    def segments(self, messages, eos_token: str | None, *, add_generation_prompt: bool = False) -> list[Segment]:
        """Render turns as text pieces. Training: turns end with the assistant; generation: with the user.

        Supervised text starts at the separator before the reply, so the reply's first token (which
        often absorbs that leading space) is supervised whole, and ends with the EOS token.
        """
        turns = to_turns(messages)
        check_alternation(turns)
        ends_with_user = turns[-1].role == USER
        if add_generation_prompt != ends_with_user:
            raise ValueError(
                "a generation prompt must end with the user's turn; a training sample with the assistant's"
                f" (got {'user' if ends_with_user else 'assistant'} last, add_generation_prompt={add_generation_prompt})"
            )
        has_reply = any(turn.role == ASSISTANT for turn in turns)
        if has_reply and not eos_token:
            raise ValueError(f"template {self.name!r} needs the tokenizer's EOS token to end assistant replies")
        if self.style == "plain":
            return self._plain_segments(turns, eos_token)
        return self._two_role_segments(move_image_to_front(turns), eos_token, add_generation_prompt)

    def _plain_segments(self, turns: list[Turn], eos_token: str | None) -> list[Segment]:
        # Stage 1 (LLaVA's preprocess_plain): the user's text is replaced by the images alone and the
        # caption follows, ended by "\n"; any question wording is dropped.
        if len(turns) > 2:
            raise ValueError(f"template 'plain' takes images and one caption, got {len(turns)} turns")
        num_images = turns[0].text.count(IMAGE_TOKEN)
        if not num_images:
            raise ValueError(f"template 'plain' needs an {IMAGE_TOKEN} in the first turn (stage 1 is image captioning)")
        pieces = [Segment(IMAGE_TOKEN * num_images, False)]
        if len(turns) == 2:
            pieces.append(Segment(turns[1].text + "\n", True))
        return pieces

    def _two_role_segments(self, turns: list[Turn], eos_token: str | None, add_generation_prompt: bool):
        pieces = []
        prefix = self.system + self.turn_sep if self.system else ""
        for turn in turns:
            if turn.role == USER:
                pieces.append(Segment(f"{prefix}{self.user_role}: {turn.text}{self.turn_sep}{self.assistant_role}:", False))
                prefix = ""
            else:
                pieces.append(Segment(f" {turn.text}{eos_token}", True))
        return pieces

    def prompt_for(self, messages, eos_token: str | None = None) -> str:
        """The text to feed `generate`: the conversation so far, ending where the assistant speaks.

        `messages` is a question string or a list of turns ending with the user's. `eos_token` (the
        tokenizer's) is needed only when the history holds assistant replies.
        """
        return "".join(piece.text for piece in self.segments(messages, eos_token, add_generation_prompt=True))

    def training_text(self, messages, eos_token: str) -> str:
        """The full training text (pieces joined); labels come from `segments`."""
        return "".join(piece.text for piece in self.segments(messages, eos_token))


VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)

TEMPLATES: dict[str, ConversationTemplate] = {
    "plain": ConversationTemplate(name="plain", style="plain"),
    "v1": ConversationTemplate(name="v1", style="two_roles", system=VICUNA_SYSTEM),
    "vicuna_v1": ConversationTemplate(name="vicuna_v1", style="two_roles", system=VICUNA_SYSTEM),
}


def get_template(name: str) -> ConversationTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown conversation template {name!r}; choose one of {sorted(TEMPLATES)}") from None
