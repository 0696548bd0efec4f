"""A folder written by transformers' own LlavaForConditionalGeneration loads into our class and gives
the same logits and the same greedy tokens."""

import torch
from safetensors.torch import load_file, save_file
from transformers import LlavaForConditionalGeneration, LlavaProcessor

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor

from .tiny import random_image

PROMPTS = ["USER: <image>\nWhat is in the image? ASSISTANT:", "USER: <image>\nHow many circles? ASSISTANT:"]


def _inputs(processor):
    images = [random_image(seed=1), random_image(50, 30, seed=2)]
    return processor(text=PROMPTS, images=images, padding=True, return_tensors="pt")


def test_same_inputs_and_logits_as_transformers(llava_hf_dir):
    reference = LlavaForConditionalGeneration.from_pretrained(llava_hf_dir).eval()
    ours = LlavaViTSplitForConditionalGeneration.from_pretrained(llava_hf_dir).eval()
    assert ours.config.projector_type == "mlp2x_gelu"
    hf_inputs = _inputs(LlavaProcessor.from_pretrained(llava_hf_dir))
    our_inputs = _inputs(LlavaViTSplitProcessor.from_pretrained(llava_hf_dir, image_aspect_ratio="square"))
    for key in ("input_ids", "attention_mask", "pixel_values"):
        torch.testing.assert_close(our_inputs[key], hf_inputs[key], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(ours(**hf_inputs).logits, reference(**hf_inputs).logits, rtol=1e-5, atol=1e-5)
    generated = [m.generate(**hf_inputs, max_new_tokens=5, do_sample=False) for m in (reference, ours)]
    assert torch.equal(*generated)


def test_both_key_layouts_load(llava_hf_dir, tmp_path):
    """transformers writes Llava as `language_model.model.*` (the Hub layout); the module layout
    (`model.language_model.*`) loads as well."""
    assert any(key.startswith("language_model.model.") for key in load_file(llava_hf_dir / "model.safetensors"))
    reference = LlavaForConditionalGeneration.from_pretrained(llava_hf_dir)
    for item in llava_hf_dir.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    module_layout = {key: value.contiguous() for key, value in reference.state_dict().items()}
    save_file(module_layout, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = LlavaViTSplitForConditionalGeneration.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, module_layout[key], rtol=0, atol=0)


def test_our_mlp_folder_opens_in_transformers(llava_hf_dir, tmp_path):
    ours = LlavaViTSplitForConditionalGeneration.from_pretrained(llava_hf_dir).eval()
    ours.save_pretrained(tmp_path)
    again = LlavaForConditionalGeneration.from_pretrained(tmp_path).eval()
    inputs = _inputs(LlavaProcessor.from_pretrained(llava_hf_dir))
    with torch.no_grad():
        torch.testing.assert_close(again(**inputs).logits, ours(**inputs).logits, rtol=0, atol=0)
