"""Decoding settings: transformers' ``GenerationConfig``, built from LLaVA's knobs and checked once.

LLaVA's scripts and demo speak of ``temperature`` (0 = greedy), ``top_p``, ``num_beams`` and
``max_new_tokens``; evaluation adds stop strings (lmms-eval's ``until``). Every front end (``eval``,
the chat UIs, lmms-eval) builds its settings here, so the rules and their error messages are one.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import GenerationConfig


def decoding_config(
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float | None = None,
    num_beams: int = 1,
    stop_strings: Sequence[str] = (),
) -> GenerationConfig:
    """A ``GenerationConfig``: greedy when ``temperature`` is 0, else sampling at that temperature.

    ``stop_strings`` end a reply early (``generate`` needs the tokenizer for them); a bad value raises
    ``ValueError`` naming the setting.
    """
    if isinstance(max_new_tokens, bool) or int(max_new_tokens) != max_new_tokens or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1 (a whole number), got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if isinstance(stop_strings, str) or not all(isinstance(stop, str) and stop for stop in stop_strings):
        raise ValueError(f"stop_strings must be a sequence of non-empty strings, got {stop_strings!r}")
    config = GenerationConfig(
        max_new_tokens=int(max_new_tokens),
        num_beams=num_beams,
        do_sample=temperature > 0,
        stop_strings=list(stop_strings) or None,  # generate treats any value, even empty, as stop strings
    )
    if config.do_sample:
        config.temperature = temperature
        config.top_p = top_p
    return config


def sampling_temperature(config: GenerationConfig) -> float:
    """The temperature ``config`` samples at; 0.0 when it decodes greedily."""
    if not config.do_sample:
        return 0.0
    return 1.0 if config.temperature is None else float(config.temperature)
