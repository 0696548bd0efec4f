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
    assert [turn.text for turn in state.conversation.turns] == ["Describe the photo.", shown]

    *_, (history, _, state) = demo.send({"text": "Is it night?", "files": []}, state, 0.0, 1.0, 8)
    assert [message["role"] for message in history] == ["user", "user", "assistant", "user", "assistant"]
    assert len(state.conversation.turns) == 4
