import json

import pytest

from llava_vitsplit.quickstart.weights.cache import COMPLETE_MARKER
from llava_vitsplit.quickstart.weights.vicuna_tokenizer import (
    REFERENCE_SEPARATOR,
    read_reference_tokenizations,
    reference_files,
    reference_mismatches,
)


def test_reference_files_are_parsed_per_test(tmp_path):
    inp, out = tmp_path / "v.inp", tmp_path / "v.out"
    inp.write_text(
        "Hello" + REFERENCE_SEPARATOR + "" + REFERENCE_SEPARATOR + " a\nb" + REFERENCE_SEPARATOR,
        encoding="utf-8",
    )
    out.write_text("1 2\n\n3 4 5\n", encoding="utf-8")
    assert read_reference_tokenizations(inp, out) == [("Hello", [1, 2]), ("", []), (" a\nb", [3, 4, 5])]


def test_reference_count_mismatch_is_an_error(tmp_path):
    inp, out = tmp_path / "v.inp", tmp_path / "v.out"
    inp.write_text("a" + REFERENCE_SEPARATOR + "b" + REFERENCE_SEPARATOR, encoding="utf-8")
    out.write_text("1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="2 texts but .* 1 tokenizations"):
        read_reference_tokenizations(inp, out)


def test_saved_tokenizer_reproduces_all_sentencepiece_references(vicuna_tokenizer_dir):
    from transformers import AutoTokenizer

    references = read_reference_tokenizations(*reference_files(vicuna_tokenizer_dir))
    assert len(references) == 46
    tokenizer = AutoTokenizer.from_pretrained(vicuna_tokenizer_dir)
    assert reference_mismatches(tokenizer, references) == []
    assert len(tokenizer) == 32000
    assert json.loads((vicuna_tokenizer_dir / COMPLETE_MARKER).read_text())["source"].startswith(
        "llama-cpp-python==0.3.36"
    )


def test_vicuna_tokenizer_follows_llava_conventions(vicuna_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(vicuna_tokenizer_dir)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token) == ("<s>", "</s>", "<unk>")
    assert tokenizer.pad_token == "<unk>" and tokenizer.pad_token_id == 0
    assert tokenizer.model_max_length == 4096
    ids = tokenizer("USER: Hi ASSISTANT: Hello.</s>USER: Bye").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.eos_token_id) == 1
    # As with LLaVA's SentencePiece tokenizer, the text after "</s>" starts a new "▁"-prefixed word.
    after_eos = tokenizer.convert_ids_to_tokens(ids[ids.index(tokenizer.eos_token_id) + 1])
    assert after_eos.startswith("▁")
    text = "  two leading spaces and a\nnewline"
    assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True) == text
