"""The OpenAI-compatible server (`llava-vitsplit serve`), run as users run it and called with the
real `openai` client: answers, streaming, several images, batching, every refusal, disconnects and
a full queue. The model is a tiny random LlavaViTSplit checkpoint on 127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import torch
from PIL import Image

from .conftest import batch_rows, running_api_server

API_KEY = "test-key-123"
MODEL = "tiny-served"
IMAGE_TOKENS = 16  # the tiny DINOv2: 32 px, patch 8
MAX_REQUEST_BYTES = 300_000
MAX_IMAGE_PIXELS = 600 * 600
COMMON_FLAGS = ["--served-model-name", MODEL, "--max-images", "2", "--max-image-pixels", str(MAX_IMAGE_PIXELS),
                "--max-request-bytes", str(MAX_REQUEST_BYTES)]


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


RED = data_url(Image.new("RGB", (40, 30), (220, 30, 30)))
BLUE = data_url(Image.new("RGB", (30, 40), (30, 30, 220)))


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def ask(text: str, *urls: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, *map(image_part, urls)]}]


@pytest.fixture(scope="module")
def checkpoints(tiny_checkpoint, tmp_path_factory):
    """The tiny random checkpoint, and a copy that never says EOS and reads 8192 tokens, so only
    max_tokens or the client ends its answers (for the disconnect and queue tests)."""
    endless = tmp_path_factory.mktemp("api") / "endless"
    shutil.copytree(tiny_checkpoint, endless)
    config = json.loads((endless / "config.json").read_text())
    config["text_config"]["max_position_embeddings"] = 8192
    (endless / "config.json").write_text(json.dumps(config))
    generation = json.loads((endless / "generation_config.json").read_text())
    generation["suppress_tokens"] = [config["text_config"]["eos_token_id"]]
    (endless / "generation_config.json").write_text(json.dumps(generation))
    return tiny_checkpoint, endless


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory):
    log = tmp_path_factory.mktemp("api-log") / "server.log"
    # Requests wait up to 250 ms for company: on a loaded machine, requests sent together still batch.
    flags = [*COMMON_FLAGS, "--api-key", API_KEY, "--max-batch-size", "4", "--batch-wait-ms", "250"]
    with running_api_server(checkpoints[0], log, flags) as s:
        yield s


@pytest.fixture(scope="module")
def busy_server(checkpoints, tmp_path_factory):
    """One request at a time, one waiting: a second waiting request is refused."""
    log = tmp_path_factory.mktemp("busy-log") / "server.log"
    flags = [*COMMON_FLAGS, "--max-batch-size", "1", "--max-queue", "1"]
    with running_api_server(checkpoints[1], log, flags) as s:
        yield s


def client(server, api_key=API_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "v1", api_key=api_key, max_retries=0, timeout=120)


def greedy(server, messages, **kwargs):
    return client(server).chat.completions.create(model=MODEL, messages=messages, temperature=0,
                                                  max_tokens=kwargs.pop("max_tokens", 12), **kwargs)


def health(server) -> dict:
    return httpx.get(server.url + "health", timeout=10).json()


# -- answers ------------------------------------------------------------------------------------


def test_models_and_health(server):
    assert [model.id for model in client(server).models.list()] == [MODEL]
    status = health(server)
    assert status["status"] == "ok" and status["model"] == MODEL and status["max_batch_size"] == 4


def test_plain_answer_with_usage(server):
    reply = greedy(server, ask("What colour is it?", RED))
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == MODEL
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.message.content.strip()  # a random model still writes something
    assert choice.finish_reason in ("stop", "length")
    usage = reply.usage
    assert 1 <= usage.completion_tokens <= 12 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens > IMAGE_TOKENS  # the image's tokens are counted
    assert greedy(server, ask("What colour is it?", RED)).choices[0].message.content == choice.message.content


def test_streamed_chunks_join_to_the_plain_answer(server):
    messages = ask("Describe the picture.", BLUE)
    plain = greedy(server, messages, max_tokens=20)
    chunks = list(greedy(server, messages, max_tokens=20, stream=True, stream_options={"include_usage": True}))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == plain.choices[0].message.content
    assert len([chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]) > 1  # streamed
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices and chunk.choices[0].finish_reason]
    assert finishes == [plain.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    # On the wire: server-sent events ending with [DONE].
    body = {"model": MODEL, "messages": messages, "temperature": 0, "max_tokens": 5, "stream": True}
    with httpx.stream("POST", server.url + "v1/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in events)


def test_two_images_in_one_message_and_images_in_later_messages(server):
    one = greedy(server, ask("Which is red?", RED))
    two = greedy(server, [{"role": "user", "content": [
        {"type": "text", "text": "Which is red?"}, image_part(RED), {"type": "text", "text": "or"}, image_part(BLUE)]}])
    assert two.choices[0].message.content
    extra_text = two.usage.prompt_tokens - one.usage.prompt_tokens - IMAGE_TOKENS
    assert 0 < extra_text < 5  # the second image's tokens, plus "or" and its newlines
    later = greedy(server, [
        *ask("What colour is it?", RED),
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": [image_part(BLUE), {"type": "text", "text": "And this one?"}]},
    ])
    assert later.usage.prompt_tokens > 2 * IMAGE_TOKENS and later.choices[0].message.content


def test_requests_sent_together_are_batched_and_answer_as_alone(server):
    questions = ["What colour is it?", "Is there a dog?", "How many dogs are there?", "Which animal is shown?"]
    alone = [greedy(server, ask(q, RED if i % 2 else BLUE)).choices[0].message.content for i, q in enumerate(questions)]
    before = len(server.log_lines())
    with ThreadPoolExecutor(len(questions)) as pool:
        together = list(pool.map(lambda iq: greedy(server, ask(iq[1], RED if iq[0] % 2 else BLUE))
                                 .choices[0].message.content, enumerate(questions)))
    assert together == alone
    batches = server.wait_for_log("batch of", until=lambda lines: batch_rows(lines) == len(questions), start=before)
    assert any("batch of 1:" not in line for line in batches), batches  # at least one batch held several


def test_system_message_and_stop_strings(server):
    plain = greedy(server, ask("Describe the picture.", RED), max_tokens=20).choices[0].message.content
    words = plain.split()
    assert len(words) >= 2
    stop = words[1]
    cut = greedy(server, ask("Describe the picture.", RED), max_tokens=20, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == plain[: plain.index(stop)]
    system = greedy(server, [{"role": "system", "content": "Answer briefly."}, *ask("Describe the picture.", RED)])
    assert system.usage.prompt_tokens < greedy(server, ask("Describe the picture.", RED)).usage.prompt_tokens


def test_seeded_sampling_repeats(server):
    def sample():
        return client(server).chat.completions.create(
            model=MODEL, messages=ask("Describe the picture.", RED), temperature=1.5, top_p=0.95, seed=7,
            max_tokens=15).choices[0].message.content
    assert sample() == sample()


# -- refusals -----------------------------------------------------------------------------------


def refused(server, error_type, messages, match, **kwargs):
    with pytest.raises(error_type) as raised:
        greedy(server, messages, **kwargs)
    assert match in raised.value.message, raised.value.message
    return raised.value


def test_non_image_data_url_is_refused(server):
    text_file = f"data:text/plain;base64,{base64.b64encode(b'hello').decode()}"
    error = refused(server, openai.BadRequestError, ask("What is it?", text_file), "not an image")
    assert "messages[0].content[1]" in error.message and error.status_code == 400
    fake_png = f"data:image/png;base64,{base64.b64encode(b'not a png at all').decode()}"
    refused(server, openai.BadRequestError, ask("What is it?", fake_png), "is not an image")


def test_too_many_images_is_refused(server):
    refused(server, openai.BadRequestError, ask("Which?", RED, BLUE, RED), "at most 2")


def test_too_many_pixels_is_refused_before_decoding(server):
    huge = data_url(Image.new("RGB", (700, 700), (10, 200, 10)))
    refused(server, openai.BadRequestError, ask("What is it?", huge), "at most 360,000")


def test_oversized_request_is_refused(server):
    noise = Image.frombytes("RGB", (300, 300), torch.randint(0, 256, (300 * 300 * 3,), dtype=torch.uint8).numpy().tobytes())
    big = data_url(noise)
    assert len(big) > MAX_REQUEST_BYTES
    error = refused(server, openai.APIStatusError, ask("What is it?", big), "larger than this server's limit")
    assert error.status_code == 413


def test_remote_and_local_images_are_refused(server):
    error = refused(server, openai.BadRequestError, ask("What is it?", "http://127.0.0.1:9/cat.png"),
                    "--allow-remote-images")
    assert "data: URL" in error.message
    for local in ("/etc/hostname", "file:///etc/hostname", "cat.png"):
        refused(server, openai.BadRequestError, ask("What is it?", local), "cannot be read from the server's files")


def test_wrong_or_missing_api_key_is_refused(server):
    for key in ("wrong-key", "x"):
        with pytest.raises(openai.AuthenticationError) as raised:
            client(server, api_key=key).chat.completions.create(model=MODEL, messages=ask("Hi?", RED))
        assert "Invalid API key" in raised.value.message
    assert httpx.get(server.url + "v1/models").status_code == 401


def test_empty_and_malformed_requests_are_refused(server):
    refused(server, openai.BadRequestError, [], "'messages' is empty")
    refused(server, openai.BadRequestError, [{"role": "user", "content": ""}], "empty")
    refused(server, openai.BadRequestError, [{"role": "assistant", "content": "Hi."}], "must alternate")
    refused(server, openai.BadRequestError, ask("Hi <image> there?"), "reserves for images")
    refused(server, openai.BadRequestError, ask("Hi?"), "'n' is not supported", n=2)
    refused(server, openai.BadRequestError, ask("Hi?"), "at most", max_tokens=100_000)
    with pytest.raises(openai.NotFoundError, match="this server serves 'tiny-served'"):
        client(server).chat.completions.create(model="gpt-4o", messages=ask("Hi?"))
    bad_json = httpx.post(server.url + "v1/chat/completions", content=b"{nope", timeout=10,
                          headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]
    # Every refusal above left the server serving.
    assert health(server)["status"] == "ok" and greedy(server, ask("Still there?", RED)).choices[0].message.content


# -- disconnects and a full queue -----------------------------------------------------------------


def stream_request(server, max_tokens: int):
    body = {"model": MODEL, "messages": ask("Describe the picture.", RED), "temperature": 0,
            "max_tokens": max_tokens, "stream": True}
    return httpx.stream("POST", server.url + "v1/chat/completions", json=body, timeout=120)


def wait_for(server, condition, what: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = health(server)
        if condition(status):
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}: {status}")


def test_disconnect_mid_stream_frees_the_slot(busy_server):
    with stream_request(busy_server, max_tokens=6000) as response:
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]  # a few tokens arrived: the answer is being written
        assert all(line == "" or line.startswith("data: {") for line in received)
    wait_for(busy_server, lambda status: status["running"] == 0, what="the dropped stream to leave the model")
    gone = busy_server.wait_for_log("tokens (cancelled)", until=bool)  # the server noticed the disconnect
    written = int(gone[-1].split("batch of 1: ")[1].split(" new tokens")[0])
    assert written < 6000
    answer = client(busy_server).chat.completions.create(
        model=MODEL, messages=ask("What colour?", RED), temperature=0, max_tokens=5)
    assert answer.usage.completion_tokens == 5 and answer.choices[0].finish_reason == "length"


def test_full_queue_answers_503_and_recovers(busy_server):
    with stream_request(busy_server, max_tokens=6000) as running:
        lines = running.iter_lines()  # kept: a dropped iterator closes the response
        assert next(lines).startswith("data: {")
        wait_for(busy_server, lambda status: status["running"] == 1, what="the first request to run")
        waiting_result = {}

        def waiting():
            waiting_result["reply"] = client(busy_server).chat.completions.create(
                model=MODEL, messages=ask("What colour?", BLUE), temperature=0, max_tokens=4)

        waiter = threading.Thread(target=waiting)
        waiter.start()
        wait_for(busy_server, lambda status: status["queued"] == 1, what="the second request to queue")
        with pytest.raises(openai.InternalServerError) as raised:
            client(busy_server).chat.completions.create(model=MODEL, messages=ask("And now?", RED), max_tokens=4)
        assert raised.value.status_code == 503 and "queue of waiting requests is full" in raised.value.message
        assert raised.value.response.headers["retry-after"] == "1"
    waiter.join(timeout=120)  # the stream was closed: the waiting request runs next
    assert waiting_result["reply"].usage.completion_tokens == 4
