"""Sampling controls for a chat reply, checked when made (a bad value is a message to the user)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ChatInputError

# LLaVA's demo defaults.
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.7
DEFAULT_MAX_NEW_TOKENS = 512


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling controls; temperature 0 means greedy decoding."""

    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 5.0:
            raise ChatInputError(f"temperature must be between 0 and 5, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ChatInputError(f"top_p must be in (0, 1], got {self.top_p}")
        if int(self.max_new_tokens) != self.max_new_tokens or self.max_new_tokens < 1:
            raise ChatInputError(f"max_new_tokens must be a positive whole number, got {self.max_new_tokens}")

    def generate_kwargs(self, max_new_tokens: int) -> dict:
        if self.temperature == 0:
            return {"do_sample": False, "max_new_tokens": max_new_tokens}
        return {
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": max_new_tokens,
        }
