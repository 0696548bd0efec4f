import pytest
import torch

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration
from llava_vitsplit.model.inference import generate_answers

from .tiny import random_image

REQUESTS = [
    (random_image(seed=1), "USER: <image>\nWhat is in the image? ASSISTANT:"),
    (None, "USER: Describe a cat on a mat. ASSISTANT:"),
    (random_image(60, 30, seed=2), "<image>\nHow many circles?"),
    ([random_image(seed=3), random_image(seed=4)], "Compare <image> with <image>."),
]


@pytest.fixture(scope="module")
def model_and_processor(tiny_llm_dir, tiny_tower_dirs):
    torch.manual_seed(0)
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        tiny_llm_dir, tiny_tower_dirs["siglip"], projector_type="vitsplit", vitsplit_preset="llava-official"
    )
    return model.eval(), processor


def test_batched_answers_equal_one_by_one_answers(model_and_processor):
    model, processor = model_and_processor
    batched = generate_answers(model, processor, REQUESTS, batch_size=3, max_new_tokens=6)
    alone = [generate_answers(model, processor, [request], max_new_tokens=6)[0] for request in REQUESTS]
    assert batched == alone and len(batched) == len(REQUESTS)
    assert processor.tokenizer.padding_side == "right"  # left padding is per call, not a lasting change


def test_sampling_follows_the_seed(model_and_processor):
    model, processor = model_and_processor
    first = generate_answers(model, processor, REQUESTS[:2], do_sample=True, temperature=1.0, seed=3, max_new_tokens=8)
    again = generate_answers(model, processor, REQUESTS[:2], do_sample=True, temperature=1.0, seed=3, max_new_tokens=8)
    greedy = generate_answers(model, processor, REQUESTS[:2], max_new_tokens=8)
    assert first == again and first != greedy


def test_placeholder_count_must_match_the_images(model_and_processor):
    model, processor = model_and_processor
    with pytest.raises(ValueError, match=r"request 1: the prompt has 0 <image> placeholder\(s\) for 1 image\(s\)"):
        generate_answers(model, processor, [REQUESTS[0], (random_image(), "no placeholder")])
    with pytest.raises(ValueError, match=r"request 0: the prompt has 2 <image> placeholder\(s\) for 1 image\(s\)"):
        generate_answers(model, processor, [(random_image(), "<image> <image>")])


class _Chat:
    """A conversation template: anything with `prompt_for(question)`."""

    def prompt_for(self, question: str) -> str:
        return f"USER: {question} ASSISTANT:"


def test_a_template_renders_the_questions(model_and_processor):
    model, processor = model_and_processor
    image = random_image(seed=5)
    rendered = generate_answers(model, processor, [(image, "<image>\nWhat is it?")], template=_Chat(), max_new_tokens=6)
    given = generate_answers(model, processor, [(image, "USER: <image>\nWhat is it? ASSISTANT:")], max_new_tokens=6)
    assert rendered == given
