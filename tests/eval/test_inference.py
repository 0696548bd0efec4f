"""Prompts, batched generation and log-likelihoods of VisualQuestionAnswerer on a tiny checkpoint."""

import copy

import pytest
import torch
from PIL import Image

from llava_vitsplit.eval.inference import (
    VisualQuestionAnswerer,
    cut_at_stop_strings,
    parse_dtype,
)
from llava_vitsplit.eval.lmms_model import settings_from_gen_kwargs
from llava_vitsplit.model.generation import decoding_config

from .tiny_checkpoint import VICUNA_SYSTEM

QUESTIONS = [
    "Is there a red square in the image?\nAnswer the question using a single word or phrase.",
    "How many dogs are there?",
    "Which animal is shown? There are several options:\nA. dog\nB. cat",
]


@pytest.fixture(scope="module")
def answerer(tiny_checkpoint):
    return VisualQuestionAnswerer.from_pretrained(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def images():
    return [
        [Image.new("RGB", size, color)]
        for size, color in (((40, 30), "red"), ((20, 50), "blue"), ((32, 32), "green"))
    ]


def test_prompt_is_llava_v1_with_the_image_first(answerer):
    assert answerer.prompt("What is it?", 1) == f"{VICUNA_SYSTEM} USER: <image>\nWhat is it? ASSISTANT:"
    assert answerer.prompt("<image>\nWhat is it?", 1) == answerer.prompt("What is it?", 1)
    assert answerer.prompt("What is it?", 0) == f"{VICUNA_SYSTEM} USER: What is it? ASSISTANT:"
    two = f"{VICUNA_SYSTEM} USER: <image>\n<image>\nCompare them. ASSISTANT:"
    assert answerer.prompt("Compare them.", 2) == two
    assert answerer.prompt("<image> or <image>: which?", 2).endswith("USER: <image> or <image>: which? ASSISTANT:")
    with pytest.raises(ValueError, match="holds 1 <image> but 2 images"):
        answerer.prompt("<image>\nCompare them.", 2)
    with pytest.raises(ValueError, match="holds 1 <image> but 0 images"):
        answerer.prompt("<image>\nWhat is it?", 0)


def test_batched_generation_equals_one_at_a_time(answerer, images):
    settings = decoding_config(max_new_tokens=6)
    batched = answerer.generate(QUESTIONS, images, settings)
    alone = [answerer.generate([question], [row], settings)[0] for question, row in zip(QUESTIONS, images)]
    assert batched == alone
    assert any(batched)  # a random model still says something


def test_several_images_per_question_batch_with_single_ones(answerer, images):
    pair = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (30, 40), "blue")]
    rows, questions = [pair, images[1], pair[::-1]], ["Compare them.", QUESTIONS[1], "Compare them."]
    settings = decoding_config(max_new_tokens=6)
    batched = answerer.generate(questions, rows, settings)
    assert batched == [answerer.generate([question], [row], settings)[0] for question, row in zip(questions, rows)]


def test_text_only_question(answerer):
    (reply,) = answerer.generate(["How many dogs are there?"], [[]], decoding_config(max_new_tokens=4))
    assert isinstance(reply, str)


def test_loglikelihood_sums_log_probabilities_and_tells_greedy(answerer, images):
    """The LM head rows of the greedy next token and of " dog" are swapped in a copy of the model,
    so " dog" becomes the greedy reply with the old greedy token's log-probability."""
    model, processor = copy.deepcopy(answerer.model), answerer.processor
    swapped = VisualQuestionAnswerer(model, processor)
    inputs = processor(text=[swapped.prompt(QUESTIONS[0], 1)], images=images[0], return_tensors="pt")
    with torch.no_grad():
        next_logprobs = torch.log_softmax(model(**inputs).logits[0, -1].float(), -1)
        greedy = int(next_logprobs.argmax())
        dog = processor.tokenizer.convert_tokens_to_ids("\u0120dog")
        head = model.lm_head.weight
        head[[greedy, dog]] = head[[dog, greedy]].clone()
        after_dog = torch.log_softmax(
            model(
                **processor(
                    text=[swapped.prompt(QUESTIONS[0], 1) + " dog"], images=images[0], return_tensors="pt"
                )
            )
            .logits[0, -1]
            .float(),
            -1,
        )

    questions, continuations = [QUESTIONS[0]] * 3, [" dog", " dog dog", " dog no"]
    batch = swapped.loglikelihood(questions, continuations, [images[0]] * 3)
    (one, one_greedy), (two, two_greedy), (other, _) = batch
    assert one == pytest.approx(next_logprobs[greedy].item(), abs=1e-4) and one_greedy
    assert two == pytest.approx(one + after_dog[dog].item(), abs=1e-4)
    assert two_greedy == (int(after_dog.argmax()) == dog)
    assert other < 0
    # Rows of one right-padded batch score as each would alone.
    alone = [swapped.loglikelihood([q], [c], [images[0]])[0] for q, c in zip(questions, continuations)]
    assert [score for score, _ in batch] == pytest.approx([score for score, _ in alone], abs=1e-4)
    assert [flag for _, flag in batch] == [flag for _, flag in alone]


def test_stop_strings_cut_the_answer():
    assert cut_at_stop_strings("B. cat ASSISTANT: more", ["ASSISTANT:"]) == "B. cat "
    assert cut_at_stop_strings("yes\n\nno", ["\n\n", "no"]) == "yes"
    assert cut_at_stop_strings("yes", []) == "yes"


def test_generation_settings_from_lmms_eval_kwargs():
    greedy = settings_from_gen_kwargs(
        {"max_new_tokens": 16, "temperature": 0, "top_p": 1.0, "num_beams": 1, "do_sample": False}
    )
    assert (greedy.do_sample, greedy.max_new_tokens, greedy.stop_strings) == (False, 16, None)
    assert not settings_from_gen_kwargs({"temperature": 0.7, "do_sample": False}).do_sample
    assert settings_from_gen_kwargs({"temperature": 0.7}).temperature == 0.7
    assert settings_from_gen_kwargs({"do_sample": True}).temperature == 1.0
    assert settings_from_gen_kwargs({"until": "ASSISTANT:"}).stop_strings == ["ASSISTANT:"]
    assert settings_from_gen_kwargs({}).max_new_tokens == 1024
    with pytest.raises(ValueError, match="unsupported generation kwargs \\['repetition_penalty'\\]"):
        settings_from_gen_kwargs({"repetition_penalty": 1.1})
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        decoding_config(max_new_tokens=0)


def test_parse_dtype():
    assert parse_dtype("bfloat16") is torch.bfloat16
    assert parse_dtype("torch.float16") is torch.float16
    assert parse_dtype("auto") is None and parse_dtype(None) is None
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        parse_dtype("fp8")
