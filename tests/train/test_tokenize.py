"""Label masks of the `plain` and `v1` templates line up exactly with the ids, or fail loudly."""

from __future__ import annotations

import pytest

from llava_vitsplit.data.conversation import get_template
from llava_vitsplit.data.tokenize import (
    IGNORE_INDEX,
    TokenizationMismatchError,
    TooLongError,
    tokenize_conversation,
)

IMAGE_SEQ = 4

MULTI_TURN = [
    {"from": "human", "value": "What colour is the circle?\n<image>"},
    {"from": "gpt", "value": "Red."},
    {"from": "human", "value": "How many shapes are there?"},
    {"from": "gpt", "value": "There are 2 shapes."},
    {"from": "human", "value": "Where is the square?"},
    {"from": "gpt", "value": "At the top right."},
]


def supervised_runs(labels):
    runs, current = [], []
    for label in labels:
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(label)
    return runs + ([current] if current else [])


def tokenize(tokenizer, template_name, conversation, num_images=1, max_length=None):
    template = get_template(template_name)
    return tokenize_conversation(
        template.segments(conversation, tokenizer.eos_token),
        tokenizer,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=IMAGE_SEQ,
        num_images=num_images,
        max_length=max_length,
    )


@pytest.mark.parametrize("which", ["sp_tokenizer", "byte_tokenizer"])
def test_v1_multi_turn_masks_exactly_the_replies(which, request):
    tokenizer = request.getfixturevalue(which)
    result = tokenize(tokenizer, "v1", MULTI_TURN)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    full_text = get_template("v1").training_text(MULTI_TURN, tokenizer.eos_token)
    # The ids are exactly the whole text tokenised once (plus BOS), with the image expanded.
    expected = tokenizer(full_text)["input_ids"]
    image_at = expected.index(image_id)
    expected = expected[:image_at] + [image_id] * IMAGE_SEQ + expected[image_at + 1 :]
    assert result.input_ids == expected
    assert result.input_ids.count(image_id) == IMAGE_SEQ
    assert all(label == IGNORE_INDEX for ids, label in zip(result.input_ids, result.labels) if ids == image_id)
    # Three supervised runs, each decoding to " reply" + EOS, labels equal to the ids there.
    runs = supervised_runs(result.labels)
    replies = [turn["value"] for turn in MULTI_TURN if turn["from"] == "gpt"]
    assert len(runs) == 3
    for run, reply in zip(runs, replies):
        assert tokenizer.decode(run).strip() == reply + tokenizer.eos_token
    assert all(label in (IGNORE_INDEX, ids) for ids, label in zip(result.input_ids, result.labels))
    # Everything else (system prompt, USER turns, "ASSISTANT:") is masked.
    masked = [ids for ids, label in zip(result.input_ids, result.labels) if label == IGNORE_INDEX and ids != image_id]
    masked_text = tokenizer.decode(masked, skip_special_tokens=True)
    assert "What colour is the circle?" in masked_text and "Red" not in masked_text


def test_v1_separator_is_the_tokenizers_eos(byte_tokenizer):
    text = get_template("vicuna_v1").training_text(MULTI_TURN, byte_tokenizer.eos_token)
    assert text.count("<|im_end|>") == 3 and "</s>" not in text


def test_plain_supervises_caption_and_newline_only(sp_tokenizer):
    caption = [{"from": "human", "value": "<image>\nDescribe it."}, {"from": "gpt", "value": "A blue circle."}]
    result = tokenize(sp_tokenizer, "plain", caption)
    image_id = sp_tokenizer.convert_tokens_to_ids("<image>")
    assert result.input_ids[0] == sp_tokenizer.bos_token_id
    assert result.input_ids[1 : 1 + IMAGE_SEQ] == [image_id] * IMAGE_SEQ
    (run,) = supervised_runs(result.labels)
    assert sp_tokenizer.decode(run).strip() == "A blue circle."
    assert sp_tokenizer.decode(run).endswith("\n")
    assert "Describe" not in sp_tokenizer.decode(result.input_ids)  # plain drops the question


def test_boundary_inside_a_token_is_a_mismatch_error(merging_tokenizer):
    with pytest.raises(TokenizationMismatchError, match="inside a token"):
        tokenize(merging_tokenizer, "v1", MULTI_TURN)


def test_truncation_keeps_labels_and_reports_original_length(sp_tokenizer):
    full = tokenize(sp_tokenizer, "v1", MULTI_TURN)
    cut = len(full.input_ids) - 5
    result = tokenize(sp_tokenizer, "v1", MULTI_TURN, max_length=cut)
    assert result.truncated_from == len(full.input_ids)
    assert result.input_ids == full.input_ids[:cut] and result.num_supervised > 0


def test_truncation_into_the_image_or_past_all_labels_is_an_error(sp_tokenizer):
    full = tokenize(sp_tokenizer, "v1", MULTI_TURN)
    image_start = full.input_ids.index(sp_tokenizer.convert_tokens_to_ids("<image>"))
    with pytest.raises(TooLongError, match="cuts into the image"):
        tokenize(sp_tokenizer, "v1", MULTI_TURN, max_length=image_start + 2)
    first_label = next(i for i, label in enumerate(full.labels) if label != IGNORE_INDEX)
    with pytest.raises(TooLongError, match="no supervised token"):
        tokenize(sp_tokenizer, "v1", MULTI_TURN, max_length=first_label)


def test_image_token_count_must_match(sp_tokenizer):
    with pytest.raises(ValueError, match="expected 0 image token"):
        tokenize(sp_tokenizer, "v1", MULTI_TURN, num_images=0)


def test_prompt_for_generation_ends_at_the_assistant_role():
    template = get_template("v1")
    prompt = template.prompt_for("<image>\nWhat colour?")
    assert prompt.endswith("USER: <image>\nWhat colour? ASSISTANT:")
    history = MULTI_TURN[:3]
    assert template.prompt_for(history, eos_token="</s>").endswith("Red.</s>USER: How many shapes are there? ASSISTANT:")
    with pytest.raises(ValueError, match="EOS"):
        template.prompt_for(history)
    with pytest.raises(ValueError, match="unknown conversation template"):
        get_template("llama_3")


@pytest.fixture(scope="module")
def vicuna_tokenizer():
    """The real LLaMA-2 / Vicuna-v1.5 tokenizer (demo weights cache), with <image> added as the model does."""
    from transformers import AutoTokenizer

    from llava_vitsplit.model.tokenizer import prepare_tokenizer
    from llava_vitsplit.quickstart.weights import ensure_vicuna_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(ensure_vicuna_tokenizer())
    prepare_tokenizer(tokenizer)
    return tokenizer


def test_v1_masks_line_up_on_the_real_vicuna_tokenizer(vicuna_tokenizer):
    conversation = MULTI_TURN + [
        {"from": "human", "value": "Is there a green triangle? Answer yes or no."},
        {"from": "gpt", "value": "Yes, there is one.\nIt is small."},
    ]
    result = tokenize(vicuna_tokenizer, "v1", conversation)
    assert result.input_ids[0] == vicuna_tokenizer.bos_token_id
    runs = supervised_runs(result.labels)
    replies = [turn["value"] for turn in conversation if turn["from"] == "gpt"]
    assert len(runs) == len(replies)
    colon = vicuna_tokenizer.convert_tokens_to_ids(":")
    positions = [i for i, label in enumerate(result.labels) if label != IGNORE_INDEX]
    starts = [p for p in positions if result.labels[p - 1] == IGNORE_INDEX]
    for run, reply, start in zip(runs, replies, starts):
        # " Red.</s>": the reply with its leading space and Vicuna's EOS, nothing more, nothing less.
        assert vicuna_tokenizer.decode(run) == reply + "</s>"
        assert run[-1] == vicuna_tokenizer.eos_token_id
        assert result.input_ids[start - 1] == colon  # right after "ASSISTANT:"
        assert vicuna_tokenizer.convert_ids_to_tokens(run[0]).startswith("▁")


def test_plain_masks_line_up_on_the_real_vicuna_tokenizer(vicuna_tokenizer):
    caption = [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "Two red circles on the left."}]
    result = tokenize(vicuna_tokenizer, "plain", caption)
    (run,) = supervised_runs(result.labels)
    assert vicuna_tokenizer.decode(run) == "Two red circles on the left.\n"
    assert len(result.input_ids) == 1 + IMAGE_SEQ + len(run)


def test_v1_masks_line_up_on_the_real_smollm2_tokenizer():
    """The quick start's LLM: byte-level BPE, no BOS, `<|im_end|>` ends each reply."""
    from transformers import AutoTokenizer

    from llava_vitsplit.model.tokenizer import prepare_tokenizer
    from llava_vitsplit.quickstart.weights import ensure_smollm2_135m

    tokenizer = AutoTokenizer.from_pretrained(ensure_smollm2_135m())
    prepare_tokenizer(tokenizer)
    result = tokenize(tokenizer, "v1", MULTI_TURN)
    replies = [turn["value"] for turn in MULTI_TURN if turn["from"] == "gpt"]
    runs = supervised_runs(result.labels)
    assert [tokenizer.decode(run) for run in runs] == [f" {reply}{tokenizer.eos_token}" for reply in replies]
    assert tokenizer.eos_token == "<|im_end|>"


TWO_IMAGES = [
    {"from": "human", "value": "<image>\n<image>\nWhich shape is in both pictures?"},
    {"from": "gpt", "value": "The circle."},
    {"from": "human", "value": "And in this one?\n<image>"},
    {"from": "gpt", "value": "A square, at the top.\nNothing else."},
]
ONE_IMAGE = [
    {"from": "human", "value": "<image>\nWhich shape is in both pictures?"},
    TWO_IMAGES[1],
    {"from": "human", "value": "And in this one?"},
    TWO_IMAGES[3],
]


def test_several_images_mask_like_one_on_the_real_vicuna_tokenizer(vicuna_tokenizer):
    image_id = vicuna_tokenizer.convert_tokens_to_ids("<image>")
    several = tokenize(vicuna_tokenizer, "v1", TWO_IMAGES, num_images=3)
    single = tokenize(vicuna_tokenizer, "v1", ONE_IMAGE, num_images=1)
    assert several.input_ids.count(image_id) == 3 * IMAGE_SEQ
    assert all(label == IGNORE_INDEX for ids, label in zip(several.input_ids, several.labels) if ids == image_id)
    # The supervised tokens are exactly those of the one-image conversation: " reply</s>" per reply.
    assert supervised_runs(several.labels) == supervised_runs(single.labels)
    replies = [turn["value"] for turn in TWO_IMAGES if turn["from"] == "gpt"]
    assert [vicuna_tokenizer.decode(run) for run in supervised_runs(several.labels)] == [f"{r}</s>" for r in replies]
    # Two images in one turn stay in place; a turn's single image moves to its front (LLaVA).
    text = get_template("v1").training_text(TWO_IMAGES, "</s>")
    assert "USER: <image>\n<image>\nWhich shape is in both pictures? ASSISTANT:" in text
    assert "USER: <image>\nAnd in this one? ASSISTANT:" in text
    first_end = several.input_ids.index(image_id) + IMAGE_SEQ
    second = several.input_ids.index(image_id, first_end)
    assert vicuna_tokenizer.decode(several.input_ids[first_end:second]).strip(" ") == "\n"  # between the images
    assert several.input_ids[second : second + IMAGE_SEQ] == [image_id] * IMAGE_SEQ


def test_plain_takes_every_image_of_the_caption_on_the_real_vicuna_tokenizer(vicuna_tokenizer):
    caption = [{"from": "human", "value": "<image>\n<image>"}, {"from": "gpt", "value": "A red and a blue circle."}]
    result = tokenize(vicuna_tokenizer, "plain", caption, num_images=2)
    image_id = vicuna_tokenizer.convert_tokens_to_ids("<image>")
    assert result.input_ids[1 : 1 + 2 * IMAGE_SEQ] == [image_id] * (2 * IMAGE_SEQ)
    (run,) = supervised_runs(result.labels)
    assert vicuna_tokenizer.decode(run) == "A red and a blue circle.\n"
    with pytest.raises(ValueError, match="expected 1 image token"):
        tokenize(vicuna_tokenizer, "plain", caption, num_images=1)
