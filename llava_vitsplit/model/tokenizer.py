"""The ``<image>`` placeholder in the LLM's tokenizer, and LLaVA's padding token.

LLaVA pads with the UNK token (`tokenizer.pad_token = tokenizer.unk_token`). Padding with a token
the conversations never contain keeps padding apart from EOS, the token that ends every assistant
reply and must stay supervised. Without an UNK token we keep an existing pad token, else use EOS
(padding is masked out of the loss by the attention mask and the -100 labels either way).
"""

from __future__ import annotations

import torch
from tokenizers import AddedToken

from llava_vitsplit.constants import IMAGE_TOKEN


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


def prepare_tokenizer(tokenizer) -> int:
    """Add ``<image>`` as a special token (never split, never normalised) and set the pad token by
    LLaVA's convention (UNK); returns the id of ``<image>``."""
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    set_llava_pad_token(tokenizer)
    return tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)


@torch.no_grad()
def grow_embeddings(model, tokenizer) -> None:
    """Give ``model`` one embedding row per token of ``tokenizer``; new rows (input and output) are the
    mean of the old ones - deterministic, so rebuilding a base model reproduces it exactly."""
    old = model.get_input_embeddings().num_embeddings
    if len(tokenizer) <= old:
        return
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    matrices = {id(m.weight): m.weight for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m}
    for weight in matrices.values():
        weight[old:] = weight[:old].mean(dim=0, keepdim=True)
