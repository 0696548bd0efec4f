"""The running demo (`python -m llava_vitsplit.serve.gradio_demo`) driven through `gradio_client`."""

from concurrent.futures import ThreadPoolExecutor

import gradio_client
import numpy as np
from PIL import Image

GREEDY = dict(temperature=0.0, top_p=1.0, max_new_tokens=10)


def new_client(url):
    return gradio_client.Client(url, verbose=False)


def message(text, image=None):
    return {"text": text, "files": [gradio_client.handle_file(str(image))] if image else []}


def send(client, text, image=None, settings=GREEDY):
    """All the updates the server streamed for one message; each is (chat messages, textbox)."""
    job = client.submit(message(text, image), settings["temperature"], settings["top_p"],
                        settings["max_new_tokens"], api_name="/send")
    job.result(timeout=120)
    return job.outputs()


def shown(history):
    """Chat messages as (role, text or file name) pairs."""
    pairs = []
    for item in history:
        for part in item["content"]:
            pairs.append((item["role"], part["text"] if part["type"] == "text" else f"file:{part['alt_text']}"))
    return pairs


def final(updates):
    return shown(updates[-1][0])


def test_two_turn_conversation_about_an_image(demo_server, example_photos):
    client = new_client(demo_server.url)
    first = final(send(client, "What animal is this?", example_photos[0]))
    assert first[:2] == [("user", "file:chelsea_the_cat.jpg"), ("user", "What animal is this?")]
    assert first[2][0] == "assistant" and first[2][1]
    second = final(send(client, "What colour is its fur?"))
    assert second[:3] == first and second[3] == ("user", "What colour is its fur?")
    assert second[4][0] == "assistant" and second[4][1] and len(second) == 5


def test_the_answer_streams(demo_server, example_photos):
    updates = send(new_client(demo_server.url), "Describe the photo.", example_photos[1], dict(GREEDY, max_new_tokens=64))
    answers = [shown(history)[-1][1] for history, _ in updates if shown(history)[-1][0] == "assistant"]
    assert len(set(answers)) >= 3, f"expected a growing answer, got {answers}"
    assert all(later.startswith(earlier) for earlier, later in zip(answers, answers[1:]))
    textbox_while_busy, textbox_after = updates[0][1], updates[-1][1]
    assert textbox_while_busy["interactive"] is False and textbox_after["interactive"] is True


def test_a_bad_upload_is_answered_in_the_chat_and_the_next_request_is_served(demo_server, example_photos, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a picture")
    client = new_client(demo_server.url)
    reply = final(send(client, "What is this?", notes))
    assert reply[-1][0] == "assistant" and reply[-1][1].startswith("⚠ notes.txt is not an image")
    answered = final(send(client, "What animal is this?", example_photos[0]))
    assert answered[-1][0] == "assistant" and not answered[-1][1].startswith("⚠")


def test_empty_message_long_prompt_and_huge_image(demo_server, example_photos, tmp_path):
    client = new_client(demo_server.url)
    assert final(send(client, "   ", example_photos[0]))[-1] == (
        "assistant", "⚠ The message is empty: type a question about the image.")
    too_long = final(send(client, "tell me about the cat " * 120))
    assert too_long[-1][0] == "assistant" and "the model reads at most 256" in too_long[-1][1]
    assert final(send(client, "Is it a cat?"))[-1][0] == "assistant"  # the conversation goes on

    huge = tmp_path / "huge.png"
    Image.fromarray(np.full((3000, 5000, 3), 90, dtype=np.uint8)).save(huge)
    reply = final(send(client, "What is this?", huge))
    assert ("assistant", "The image is 5000x3000 pixels; it was downscaled to 1024x614.") in reply
    assert reply[-1][0] == "assistant" and not reply[-1][1].startswith("⚠")


def test_regenerate_and_clear(demo_server, example_photos):
    client = new_client(demo_server.url)
    nothing = client.predict(0.0, 1.0, 5, api_name="/regenerate")
    assert "no answer to regenerate" in shown(nothing[0])[-1][1]
    before = final(send(client, "What animal is this?", example_photos[0]))
    again = client.predict(1.0, 1.0, 10, api_name="/regenerate")
    after = shown(again[0])
    assert after[:2] == before[:2] and len(after) == len(before) and after[-1][0] == "assistant"
    cleared = client.predict(api_name="/clear")
    assert cleared[0] == []
    assert "no answer to regenerate" in shown(client.predict(0.0, 1.0, 5, api_name="/regenerate")[0])[-1][1]


def test_users_at_once_are_queued_not_mixed(demo_server, example_photos):
    questions = [("What animal is this?", example_photos[0]), ("Who is this person?", example_photos[1]),
                 ("What is in the cup?", example_photos[2])]
    alone = [final(send(new_client(demo_server.url), text, image))[-1] for text, image in questions]

    clients = [new_client(demo_server.url) for _ in questions]
    log_start = len(demo_server.log_lines())
    with ThreadPoolExecutor(len(questions)) as pool:
        together = list(pool.map(lambda args: final(send(*args)), [(c, *q) for c, q in zip(clients, questions)]))
    for (text, image), history, solo in zip(questions, together, alone):
        assert history[:2] == [("user", f"file:{image.name}"), ("user", text)]
        assert history[-1] == solo, "an answer given while others waited must equal the answer given alone"
    # The server logs when each generation starts and ends: queued, they never overlap.
    demo_server.wait_for_log("generated ", until=lambda ends: len(ends) == len(questions), start=log_start)
    events = [("start" if "generating:" in line else "end") for line in demo_server.log_lines()[log_start:]
              if "generating:" in line or "generated " in line]
    assert events == ["start", "end"] * len(questions)

