"""Integration on small real weights: the real DINOv2-S/14 tower and the real SmolLM2-135M LLM
(REFERENCE.md section 4, fetched once into the cache by `llava_vitsplit.quickstart.weights`)."""

import pytest
import torch
from PIL import Image

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor
from llava_vitsplit.model.inference import generate_answers
from llava_vitsplit.split import adapt_backbone, frozen_hidden_states

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quickstart_weights():
    from llava_vitsplit.quickstart.weights import fetch_quickstart_weights

    return fetch_quickstart_weights()


@pytest.fixture(scope="module")
def photo():
    data = pytest.importorskip("skimage.data")
    return Image.fromarray(data.chelsea())  # a real photo of a cat, 451x300


def _chat(tokenizer, text: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


def test_vitsplit_on_dinov2_and_smollm2_generates_and_round_trips(quickstart_weights, photo, tmp_path):
    torch.manual_seed(0)
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        quickstart_weights.smollm2_135m, quickstart_weights.dinov2_small, projector_type="vitsplit", vitsplit_preset="llava", image_size=112
    )
    model.eval()
    assert model.config.image_seq_length == 64  # 112 px / 14 px patches = 8 x 8
    assert model.model.vision_tower.config.hidden_size == 384 and model.config.text_config.hidden_size == 576

    # The task head starts as the pretrained penultimate DINOv2 block: its map equals the frozen one.
    pixels = processor.process_images([photo])
    adapter = adapt_backbone(model.model.vision_tower)
    heads = model.model.multi_modal_projector.heads
    states = frozen_hidden_states(adapter, pixels, {*heads.config.needed_hidden_states, 11})
    expected = adapter.tokens_to_map(adapter.final_norm(states[11]), (8, 8))
    torch.testing.assert_close(heads.task_features(states, (8, 8)), expected, rtol=1e-4, atol=1e-4)

    tokenizer = processor.tokenizer
    requests = [
        (photo, _chat(tokenizer, "<image>\nWhat animal is in this photo?")),
        (None, _chat(tokenizer, "What is the capital of France?")),
    ]
    answers = generate_answers(model, processor, requests, max_new_tokens=16)
    assert answers[0]  # an untrained projector: some text, content not meaningful yet
    assert "Paris" in answers[1]  # the real LLM answers text-only prompts through the wrapper

    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = LlavaViTSplitForConditionalGeneration.from_pretrained(tmp_path).eval()
    reprocessor = LlavaViTSplitProcessor.from_pretrained(tmp_path)
    assert generate_answers(reloaded, reprocessor, requests, max_new_tokens=16) == answers
    inputs = reprocessor(text=[requests[0][1]], images=[photo], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)
