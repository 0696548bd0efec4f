from types import SimpleNamespace

import pytest

from llava_vitsplit.model.tokenizer import set_llava_pad_token


def test_pad_is_unk_when_there_is_one():
    tokenizer = SimpleNamespace(unk_token="<unk>", pad_token="</s>", eos_token="</s>")
    assert set_llava_pad_token(tokenizer) == "<unk>" and tokenizer.pad_token == "<unk>"


def test_without_unk_an_existing_pad_is_kept_else_eos():
    tokenizer = SimpleNamespace(unk_token=None, pad_token="<pad>", eos_token="</s>")
    assert set_llava_pad_token(tokenizer) == "<pad>"
    tokenizer = SimpleNamespace(unk_token=None, pad_token=None, eos_token="</s>")
    assert set_llava_pad_token(tokenizer) == "</s>"


def test_no_usable_token_is_an_error():
    with pytest.raises(ValueError, match="neither an UNK, a pad nor an EOS"):
        set_llava_pad_token(SimpleNamespace(unk_token=None, pad_token=None, eos_token=None))
