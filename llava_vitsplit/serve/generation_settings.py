"""The chat front ends' decoding settings: a transformers ``GenerationConfig`` with LLaVA's demo
defaults, where a bad value is a message to the user (``ChatInputError``)."""

from __future__ import annotations

from transformers import GenerationConfig

from llava_vitsplit.model.generation import decoding_config

from .errors import ChatInputError
from .options import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P


def chat_generation_config(
    temperature: float = DEFAULT_TEMPERATURE, top_p: float = DEFAULT_TOP_P, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
) -> GenerationConfig:
    """Sampling controls of one reply; temperature 0 means greedy decoding."""
    try:
        return decoding_config(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
    except ValueError as error:
        raise ChatInputError(str(error)) from None
