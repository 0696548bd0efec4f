"""The ``<image>`` placeholder in the LLM's tokenizer, and LLaVA's padding token."""

from __future__ import annotations

from tokenizers import AddedToken

IMAGE_TOKEN = "<image>"


def prepare_tokenizer(tokenizer) -> int:
    """Add ``<image>`` as a special token (never split, never normalised) and make sure there is a
    pad token (LLaVA pads with UNK); returns the id of ``<image>``."""
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
