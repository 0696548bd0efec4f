"""LLaVA's padding-token convention for the language model's tokenizer.

LLaVA pads with the UNK token (`tokenizer.pad_token = tokenizer.unk_token`). Padding with a token
the conversations never contain keeps padding apart from EOS, the token that ends every assistant
reply and must stay supervised. Without an UNK token we keep an existing pad token, else use EOS
(padding is masked out of the loss by the attention mask and the -100 labels either way).
"""

from __future__ import annotations


def set_llava_pad_token(tokenizer) -> str:
    """Set `tokenizer.pad_token` by LLaVA's convention and return it."""
    if tokenizer.unk_token is not None:
        tokenizer.pad_token = tokenizer.unk_token
    elif tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                f"{type(tokenizer).__name__} has neither an UNK, a pad nor an EOS token to pad with"
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer.pad_token
