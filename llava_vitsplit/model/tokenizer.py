"""The ``<image>`` placeholder in the LLM's tokenizer, and LLaVA's padding token."""

from __future__ import annotations

import torch
from tokenizers import AddedToken

from llava_vitsplit.quickstart.weights.pad_token import set_llava_pad_token

IMAGE_TOKEN = "<image>"


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
