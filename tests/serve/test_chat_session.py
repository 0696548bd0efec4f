import threading

import pytest
import torch

from llava_vitsplit.data.conversation import ASSISTANT, IMAGE_TOKEN, USER
from llava_vitsplit.serve.chat_session import ChatEngine, Conversation, clean_question, model_name_from_path
from llava_vitsplit.serve.errors import ChatInputError
from llava_vitsplit.serve.generation_settings import chat_generation_config
from llava_vitsplit.serve.image_input import read_image

GREEDY = chat_generation_config(temperature=0, max_new_tokens=8)


@pytest.fixture
def conversation(example_photos):
    return Conversation(images=[read_image(example_photos[0])])


def test_streamed_reply_grows_and_equals_plain_generate(engine, conversation):
    inputs, _ = engine.prepare_inputs(conversation, "What animal is this?")
    expected_ids = engine.model.generate(**inputs, do_sample=False, max_new_tokens=8)[0, inputs["input_ids"].shape[1]:]
    expected = engine.tokenizer.decode(expected_ids, skip_special_tokens=True).strip()

    partials = list(engine.reply(conversation, "What animal is this?", GREEDY))
    assert len(partials) > 1, "the reply should arrive in pieces"
    assert all(later.startswith(earlier) for earlier, later in zip(partials, partials[1:]))
    assert partials[-1] == expected


def test_two_turns_are_recorded_and_the_second_prompt_holds_the_first(engine, conversation):
    first = list(engine.reply(conversation, "What animal is this?", GREEDY))[-1]
    second = list(engine.reply(conversation, "What colour is it?", GREEDY))[-1]
    assert [(t.role, t.text) for t in conversation.turns] == [
        (USER, f"{IMAGE_TOKEN}\nWhat animal is this?"), (ASSISTANT, first), (USER, "What colour is it?"),
        (ASSISTANT, second)
    ]
    prompt = engine.build_prompt(conversation, "And its eyes?")
    assert prompt.count(IMAGE_TOKEN) == 1 and prompt.index(IMAGE_TOKEN) < prompt.index("What animal is this?")
    assert f"{first}{engine.tokenizer.eos_token}USER: What colour is it?" in prompt
    assert prompt.endswith("USER: And its eyes? ASSISTANT:")


def test_text_only_conversation_has_no_image_tokens(engine):
    conversation = Conversation()
    inputs, _ = engine.prepare_inputs(conversation, "Hello")
    assert "pixel_values" not in inputs
    assert not (inputs["input_ids"] == engine.model.config.image_token_id).any()
    assert list(engine.reply(conversation, "Hello", GREEDY))


def test_empty_message_and_literal_image_token(engine, conversation):
    for empty in ["", "   \n", IMAGE_TOKEN, None]:
        with pytest.raises(ChatInputError, match="The message is empty"):
            list(engine.reply(conversation, empty, GREEDY))
    assert conversation.turns == []
    assert clean_question(f"what is {IMAGE_TOKEN} this?") == "what is  this?"


def test_a_prompt_over_the_context_is_refused_and_the_room_caps_the_reply(engine, conversation, monkeypatch):
    with pytest.raises(ChatInputError, match=r"tokens long \(16 of them for the image\) and the model reads at most 256"):
        list(engine.reply(conversation, "the cat " * 200, GREEDY))
    assert conversation.turns == []

    question = "cat " * 70
    _, room = engine.prepare_inputs(conversation, question)
    assert 0 < room < 100
    asked = []
    original = engine.model.generate
    monkeypatch.setattr(engine.model, "generate", lambda **kwargs: asked.append(kwargs["max_new_tokens"]) or original(**kwargs))
    list(engine.reply(conversation, question, chat_generation_config(0, 1, 500)))
    assert asked == [room]


def test_stopping_early_keeps_the_partial_answer_and_stops_generation(engine, conversation, monkeypatch):
    generated_lengths = []
    original = engine.model.generate

    def counting_generate(**kwargs):
        output = original(**kwargs)
        generated_lengths.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    monkeypatch.setattr(engine.model, "generate", counting_generate)
    replies = engine.reply(conversation, "Describe it.", chat_generation_config(0, 1, 200))
    shown = next(replies)
    replies.close()
    assert generated_lengths and generated_lengths[0] < 200, "generation should stop when the reader stops"
    assert conversation.turns[-1].role == ASSISTANT and conversation.turns[-1].text == shown


def test_ctrl_c_while_reading_keeps_the_partial_answer(engine, conversation, monkeypatch):
    def interrupted(inputs, generate_kwargs):
        yield " A cat"
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        list(engine.reply(conversation, "What is it?", GREEDY))
    assert [turn.text for turn in conversation.turns] == [f"{IMAGE_TOKEN}\nWhat is it?", "A cat"]


def test_a_failure_inside_generate_reaches_the_caller(engine, conversation, monkeypatch):
    def broken_generate(**kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(engine.model, "generate", broken_generate)
    with pytest.raises(RuntimeError, match="simulated"):
        list(engine.reply(conversation, "Describe it.", GREEDY))
    assert conversation.turns == []
    assert not [t for t in threading.enumerate() if t.name == "chat-generate"]


def test_regenerate_replaces_the_last_answer(engine, conversation):
    with pytest.raises(ChatInputError, match="no answer to regenerate"):
        list(engine.regenerate(conversation, GREEDY))
    list(engine.reply(conversation, "What animal is this?", GREEDY))
    torch.manual_seed(1)
    again = list(engine.regenerate(conversation, chat_generation_config(temperature=1.0, top_p=1.0, max_new_tokens=8)))[-1]
    assert len(conversation.turns) == 2 and conversation.turns[1].text == again


def test_start_over_with_new_images(engine, conversation, example_photos):
    list(engine.reply(conversation, "What animal is this?", GREEDY))
    conversation.start_over(read_image(example_photos[1]))
    assert conversation.turns == [] and [image.name for image in conversation.images] == ["astronaut.jpg"]


def test_images_attached_later_go_with_the_next_question_in_order(engine, conversation, example_photos):
    list(engine.reply(conversation, "What animal is this?", GREEDY))
    conversation.attach(read_image(example_photos[1]))
    conversation.attach(read_image(example_photos[2]))
    assert conversation.pending_images == 2
    inputs, _ = engine.prepare_inputs(conversation, "And these two?")
    assert inputs["pixel_values"].shape[0] == 3
    assert int((inputs["input_ids"] == engine.model.config.image_token_id).sum()) == 3 * 16
    prompt = engine.build_prompt(conversation, "And these two?")
    assert prompt.index("What animal") < prompt.index(f"{IMAGE_TOKEN}\n{IMAGE_TOKEN}\nAnd these two?")
    list(engine.reply(conversation, "And these two?", GREEDY))
    assert conversation.pending_images == 0
    list(engine.regenerate(conversation, GREEDY))  # the regenerated question keeps its two images
    assert conversation.turns[2].text == f"{IMAGE_TOKEN}\n{IMAGE_TOKEN}\nAnd these two?"
    with pytest.raises(ChatInputError, match=r"\(48 of them for 3 images\)"):
        list(engine.reply(conversation, "the cat " * 200, GREEDY))


@pytest.mark.parametrize(
    "settings, message",
    [(dict(temperature=-1), "temperature"), (dict(top_p=0), "top_p"), (dict(max_new_tokens=0), "max_new_tokens")],
)
def test_bad_generation_settings_are_messages(settings, message):
    with pytest.raises(ChatInputError, match=message):
        chat_generation_config(**settings)


def test_engine_loads_on_cpu_in_fp32_with_the_context_of_the_llm(engine, tiny_checkpoint):
    assert engine.model.dtype == torch.float32 and engine.model.device.type == "cpu"
    assert engine.context_len == 256 and engine.model_name == tiny_checkpoint.name
    assert isinstance(engine, ChatEngine)
    assert model_name_from_path("/runs/llava-x/checkpoint-200") == "llava-x/checkpoint-200"
