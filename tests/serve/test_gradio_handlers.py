"""The demo's event handlers in-process, where timing cannot blur what Stop does."""

from llava_vitsplit.serve.gradio_demo import ChatDemo


def test_stop_keeps_the_answer_as_far_as_it_was_shown(engine, example_photos):
    demo = ChatDemo(engine)
    message = {"text": "Describe the photo.", "files": [str(example_photos[3])]}
    *_, (full_history, _, _) = demo.send(message, None, 0.0, 1.0, 120)
    full = full_history[-1]["content"]

    updates = demo.send(message, None, 0.0, 1.0, 120)
    for update in updates:
        history, _, state = update
        if history[-1]["role"] == "assistant" and history[-1]["content"]:
            break
    updates.close()  # Gradio closes the handler's generator on Stop (and on Clear)
    shown = history[-1]["content"]
    assert full.startswith(shown) and len(shown) < len(full)
    assert [turn.text for turn in state.conversation.turns] == ["<image>\nDescribe the photo.", shown]

    *_, (history, _, state) = demo.send({"text": "Is it night?", "files": []}, state, 0.0, 1.0, 8)
    assert [message["role"] for message in history] == ["user", "user", "assistant", "user", "assistant"]
    assert len(state.conversation.turns) == 4


def test_several_images_in_one_message_and_more_in_a_later_one(engine, example_photos):
    demo = ChatDemo(engine)
    two = {"text": "Which one is the cat?", "files": [str(example_photos[0]), str(example_photos[1])]}
    *_, (history, _, state) = demo.send(two, None, 0.0, 1.0, 8)
    assert [message["role"] for message in history] == ["user", "user", "user", "assistant"]
    assert [image.name for image in state.conversation.images] == ["chelsea_the_cat.jpg", "astronaut.jpg"]
    later = {"text": "And this one?", "files": [str(example_photos[2])]}
    *_, (history, _, state) = demo.send(later, state, 0.0, 1.0, 8)
    assert [turn.text for turn in state.conversation.turns][::2] == [
        "<image>\n<image>\nWhich one is the cat?", "<image>\nAnd this one?"]
    assert len(state.conversation.images) == 3 and history[-1]["role"] == "assistant"
    _, _, cleared = demo.clear()
    assert cleared.conversation.images == [] and cleared.conversation.turns == []
