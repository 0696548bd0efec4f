"""`load_pretrained_model` picks its path from the checkpoint's files, as LLaVA users call it."""

import logging

import pytest
import torch

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor
from llava_vitsplit.model.builder import checkpoint_kind, load_pretrained_model
from llava_vitsplit.model.projector_io import save_projector

from .tiny import random_image, save_tiny_llava_checkpoint

PROMPT = "USER: <image>\nWhat is in the image? ASSISTANT:"


def _logits(model, processor, image=None):
    inputs = processor(text=[PROMPT], images=[image or random_image()], return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


@pytest.fixture(scope="module")
def built(tiny_llm_dir, tiny_tower_dirs, tmp_path_factory):
    """A stage-1-like model with a trained-looking projector, saved as a full folder."""
    torch.manual_seed(0)
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        tiny_llm_dir, tiny_tower_dirs["dinov2"], projector_type="vitsplit", image_size=24
    )
    with torch.no_grad():
        for parameter in model.model.multi_modal_projector.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    folder = tmp_path_factory.mktemp("full")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model.eval(), processor, folder


def test_full_folder_loads_on_cpu_when_cuda_is_missing(built, caplog):
    model, processor, folder = built
    with caplog.at_level(logging.INFO, logger="llava_vitsplit"):
        tokenizer, loaded, image_processor, context_len = load_pretrained_model(folder, None, "llava-v1.5-lora-misleading-name")
    assert checkpoint_kind(folder) == "llava_vitsplit"
    assert "attention implementation: sdpa" in caplog.text
    assert loaded.device.type == "cpu" and loaded.dtype == torch.float32 and not loaded.training
    assert context_len == 256 and tokenizer.pad_token == tokenizer.unk_token
    assert image_processor.crop_size["height"] == 24  # the image size chosen at build time
    torch.testing.assert_close(_logits(loaded, processor), _logits(model, processor), rtol=0, atol=0)


def test_stage1_projector_over_an_llm_base(built, tiny_llm_dir, tmp_path):
    model, processor, _ = built
    save_projector(model, tmp_path)
    processor.save_pretrained(tmp_path)  # the trainer saves the processor beside the projector
    with pytest.raises(ValueError, match="pass model_base"):
        load_pretrained_model(tmp_path, device="cpu")
    _, loaded, _, _ = load_pretrained_model(tmp_path, tiny_llm_dir, device="cpu")
    torch.testing.assert_close(_logits(loaded, processor), _logits(model, processor), rtol=1e-6, atol=1e-6)


def test_lora_checkpoint_is_merged_over_an_llm_base_or_a_full_model(built, tiny_llm_dir, tmp_path):
    from peft import LoraConfig, get_peft_model

    model, processor, full = built
    base = LlavaViTSplitForConditionalGeneration.from_pretrained(full)
    targets = [name for name, module in base.named_modules() if isinstance(module, torch.nn.Linear) and ".language_model." in f".{name}."]
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=targets, modules_to_save=["multi_modal_projector"]))
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                parameter.add_(0.05 * torch.randn_like(parameter))
    peft_model.eval()
    expected = _logits(peft_model, processor)
    assert not torch.allclose(expected, _logits(model, processor))
    lora = tmp_path / "lora"
    peft_model.save_pretrained(lora)
    peft_model.get_base_model().config.save_pretrained(lora)
    processor.save_pretrained(lora)
    assert checkpoint_kind(lora) == "lora"
    for base_folder in (tiny_llm_dir, full):
        _, merged, _, _ = load_pretrained_model(lora, base_folder, device="cpu")
        assert not any("lora" in name for name, _ in merged.named_parameters())
        torch.testing.assert_close(_logits(merged, processor), expected, rtol=1e-5, atol=1e-5)


def test_original_llava_and_llava_hf_folders_load(tiny_tower_dirs, tmp_path):
    folder = tmp_path / "llava-v1.5"
    save_tiny_llava_checkpoint(folder, tiny_tower_dirs["clip"])
    assert checkpoint_kind(folder) == "llava"
    tokenizer, model, image_processor, _ = load_pretrained_model(folder, vision_tower=tiny_tower_dirs["clip"], device="cpu")
    assert model.config.projector_type == "mlp2x_gelu" and "<image>" in tokenizer.get_vocab()
    model.save_pretrained(tmp_path / "hf-style")
    LlavaViTSplitProcessor(image_processor, tokenizer, patch_size=8).save_pretrained(tmp_path / "hf-style")
    assert checkpoint_kind(tmp_path / "hf-style") == "llava_vitsplit"


def test_misuse_is_explained(built, tiny_llm_dir, tmp_path):
    _, _, full = built
    with pytest.raises(ValueError, match="model_base is only used with LoRA or projector-only"):
        load_pretrained_model(full, tiny_llm_dir, device="cpu")
    with pytest.raises(ValueError, match="is not a LLaVA model"):
        load_pretrained_model(tiny_llm_dir, device="cpu")
    with pytest.raises(FileNotFoundError, match="holds no model"):
        load_pretrained_model(tmp_path, device="cpu")
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        load_pretrained_model(full, load_4bit=True, device="cpu")


def test_attention_and_dtype_choice(monkeypatch, caplog):
    from llava_vitsplit.model import runtime

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert runtime.default_dtype(cpu) == torch.float32
    monkeypatch.setattr(runtime, "flash_attention_available", lambda: True)
    with caplog.at_level(logging.INFO, logger="llava_vitsplit"):
        assert runtime.choose_attn_implementation(cuda, torch.bfloat16) == "flash_attention_2"
    assert "attention implementation: flash_attention_2" in caplog.text
    assert runtime.choose_attn_implementation(cuda, torch.float32) == "sdpa"  # flash needs half precision
    assert runtime.choose_attn_implementation(cpu, torch.bfloat16) == "sdpa"
    monkeypatch.setattr(runtime, "flash_attention_available", lambda: False)
    assert runtime.choose_attn_implementation(cuda, torch.bfloat16) == "sdpa"
