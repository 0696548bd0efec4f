"""The FastAPI app: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`.

Request handling (parsing, image decoding, tokenising) runs in the web server's threads and
fails fast with a 4xx error object; generation runs in the scheduler's worker thread. Every error
is answered and logged, and the next request is served as usual: a bad request never takes the
server down. A client that goes away (closed stream, dropped connection) is noticed and its
request withdrawn: from the queue if it still waits, from its batch at the next token otherwise.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from transformers import GenerationConfig

from llava_vitsplit.model.generation import decoding_config, sampling_temperature

from ..chat_session import ChatEngine
from .errors import APIError, bad_request, server_busy
from .messages import ChatPrompt, ImageLimits, read_images, to_chat_prompt
from .protocol import ChatCompletionRequest, parse_request
from .scheduler import CANCELLED, BatchScheduler, Delta, Failed, Finished, GenerationJob, QueueFull

logger = logging.getLogger(__name__)

DISCONNECT_POLL_S = 0.5  # how often a waiting non-streamed request checks that its client is still there


@dataclass(frozen=True)
class ServerConfig:
    """Limits and batching of one server; checked when made."""

    model_name: str
    api_key: str | None = None
    max_request_bytes: int = 20 * 2**20
    images: ImageLimits = field(default_factory=ImageLimits)
    default_max_tokens: int = 512
    max_batch_size: int = 8
    max_queue: int = 64
    batch_wait_s: float = 0.01

    def __post_init__(self) -> None:
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must be a non-empty string or None")
        for name in ("max_request_bytes", "default_max_tokens", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_queue < 0 or self.batch_wait_s < 0:
            raise ValueError(f"max_queue and batch_wait_s must be >= 0, got {self.max_queue}, {self.batch_wait_s}")


class ChatCompletions:
    """Turns a validated request into a `GenerationJob` and its events into OpenAI responses."""

    def __init__(self, engine: ChatEngine, config: ServerConfig):
        self.engine = engine
        self.config = config
        self.tokenizer_lock = threading.Lock()  # fast tokenizers must not be used from two threads at once
        self.scheduler = BatchScheduler(
            engine.model, engine.tokenizer, max_batch_size=config.max_batch_size, max_queue=config.max_queue,
            batch_wait_s=config.batch_wait_s, tokenizer_lock=self.tokenizer_lock,
        )

    # -- request -> job ------------------------------------------------------------------------

    async def create_job(self, request: ChatCompletionRequest, sink) -> GenerationJob:
        if request.model != self.config.model_name:
            raise APIError(404, f"The model {request.model!r} does not exist here; this server serves "
                                f"{self.config.model_name!r} (see GET /v1/models).", param="model",
                           code="model_not_found")
        prompt = to_chat_prompt(request.messages)
        images = await run_in_threadpool(read_images, prompt.images, self.config.images)
        text = self._prompt_text(prompt)
        inputs = await run_in_threadpool(self._tokenize, text, [image.image for image in images])
        prompt_tokens = inputs["input_ids"].shape[1]
        generation = self._generation_config(request, self._room(request, prompt_tokens, len(images)))
        return GenerationJob(inputs["input_ids"][0], inputs.get("pixel_values"), generation, sink,
                             stop=request.stop_strings, seed=request.seed)

    def _prompt_text(self, prompt: ChatPrompt) -> str:
        template = self.engine.template
        if prompt.system is not None:
            if template.style != "two_roles":
                raise bad_request(f"The {template.name!r} prompt format has no system prompt; leave out system messages.")
            template = dataclasses.replace(template, system=prompt.system)
        try:
            return template.prompt_for(list(prompt.turns), eos_token=self.engine.tokenizer.eos_token)
        except ValueError as error:  # e.g. the stage-1 "plain" format takes one caption request
            raise bad_request(f"The {template.name!r} prompt format cannot take these messages: {error}") from error

    def _tokenize(self, text: str, images: list) -> dict:
        with self.tokenizer_lock:
            return self.engine.processor(text=text, images=images or None, return_tensors="pt")

    def _room(self, request: ChatCompletionRequest, prompt_tokens: int, num_images: int) -> int:
        """New tokens allowed: the request's limit (else the server's default), within the context."""
        context = self.engine.context_len
        room = context - prompt_tokens
        if room < 1:
            raise bad_request(f"The messages are {prompt_tokens} tokens long ({num_images} image(s) included) and the "
                              f"model reads at most {context}. Send shorter messages or fewer images.",
                              param="messages", code="context_length_exceeded")
        asked = request.token_limit
        if asked is not None and asked > room:
            raise bad_request(f"max_tokens={asked} does not fit: the messages take {prompt_tokens} of the model's "
                              f"{context} tokens, leaving {room}. Ask for at most {room}.", param="max_tokens",
                              code="context_length_exceeded")
        return asked or min(self.config.default_max_tokens, room)

    def _generation_config(self, request: ChatCompletionRequest, max_new_tokens: int) -> GenerationConfig:
        """The checkpoint's generation config (its EOS, suppressed tokens, ...) with the request's
        decoding on top, by the package's one rule (`decoding_config`: temperature 0 is greedy).
        Unset temperature or top-p keep the checkpoint's (greedy unless it samples)."""
        config = copy.deepcopy(self.engine.model.generation_config)
        temperature = request.temperature
        if temperature is None:
            temperature = sampling_temperature(config)
        top_p = request.top_p if request.top_p is not None else (config.top_p or 1.0)
        decoding = decoding_config(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        # OpenAI's sampling has no top-k; transformers would otherwise apply its default of 50.
        config.update(do_sample=decoding.do_sample, temperature=decoding.temperature, top_p=decoding.top_p,
                      top_k=0 if decoding.do_sample else None, max_new_tokens=decoding.max_new_tokens)
        return config

    # -- events -> responses ------------------------------------------------------------------

    async def respond(self, http_request: Request, request: ChatCompletionRequest) -> Response:
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        job = await self.create_job(request, lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
        try:
            self.scheduler.submit(job)
        except QueueFull:
            raise server_busy() from None
        reply = _Reply(self.config.model_name, len(job.input_ids))
        if request.stream:
            return StreamingResponse(self._stream(job, events, reply, request.wants_usage_chunk),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            while True:
                event = await _next_event(events, http_request, lambda: self.scheduler.withdraw(job))
                if isinstance(event, Failed):
                    raise _generation_failed(event.error)
                if isinstance(event, Delta):
                    reply.text += event.text
                elif event.reason == CANCELLED:
                    return Response(status_code=499)  # nobody is listening
                else:
                    return JSONResponse(reply.completion(event))
        finally:
            self.scheduler.withdraw(job)  # no-op once finished; frees the slot of a client that left

    async def _stream(self, job: GenerationJob, events: asyncio.Queue, reply: _Reply, usage_chunk: bool
                      ) -> AsyncIterator[str]:
        try:
            yield _sse(reply.chunk({"role": "assistant", "content": ""}))
            while True:
                event = await events.get()
                if isinstance(event, Delta):
                    yield _sse(reply.chunk({"content": event.text}))
                    continue
                if isinstance(event, Failed):
                    yield _sse(_generation_failed(event.error).body())
                elif event.reason != CANCELLED:
                    yield _sse(reply.chunk({}, event.reason))
                    if usage_chunk:
                        yield _sse({**reply.chunk({}), "choices": [], "usage": reply.usage(event)})
                yield "data: [DONE]\n\n"
                return
        finally:  # also when the client disconnected: the web server cancels this generator
            self.scheduler.withdraw(job)


@dataclass
class _Reply:
    model: str
    prompt_tokens: int
    text: str = ""
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def usage(self, finished: Finished) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": finished.completion_tokens,
                "total_tokens": self.prompt_tokens + finished.completion_tokens}

    def completion(self, finished: Finished) -> dict:
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                         "finish_reason": finished.reason, "logprobs": None}],
            "usage": self.usage(finished),
        }

    def chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _generation_failed(error: BaseException) -> APIError:
    return APIError(500, f"The model failed on this request ({type(error).__name__}: {error}). The server goes on; "
                         "retrying may help if the cause was temporary.", type="server_error")


async def _next_event(events: asyncio.Queue, http_request: Request, on_disconnect):
    while True:
        try:
            return await asyncio.wait_for(events.get(), DISCONNECT_POLL_S)
        except asyncio.TimeoutError:
            if await http_request.is_disconnected():
                on_disconnect()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is larger than `limit` (declared or not)."""
    too_large = APIError(413, f"The request body is larger than this server's limit of {limit:,} bytes. Send "
                              "smaller or fewer images (or start the server with a larger --max-request-bytes).",
                         code="request_too_large")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(engine: ChatEngine, config: ServerConfig) -> FastAPI:
    completions = ChatCompletions(engine, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        completions.scheduler.start()
        yield
        completions.scheduler.close()

    app = FastAPI(title="LLaVA-ViTSplit OpenAI-compatible API", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.completions = completions

    def authorize(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("authorization", "")
        token = given[7:] if given[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(token.encode(), config.api_key.encode()):
            raise APIError(401, "Invalid API key: send the server's key as 'Authorization: Bearer KEY' (the "
                                "openai client's api_key).", code="invalid_api_key")

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        logger.info("%s %s -> %d: %s", request.method, request.url.path, error.status, error.message)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception):
        logger.exception("unexpected error on %s", request.url.path)
        failure = APIError(500, f"Internal error ({type(error).__name__}); the server goes on.", type="server_error")
        return JSONResponse(failure.body(), status_code=500)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        authorize(request)
        body = await read_body(request, config.max_request_bytes)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise bad_request(f"The request body is not valid JSON ({error}).") from None
        return await completions.respond(request, parse_request(payload))

    @app.get("/v1/models")
    async def models(request: Request):
        authorize(request)
        return {"object": "list", "data": [{"id": config.model_name, "object": "model", "created": 0,
                                            "owned_by": "llava-vitsplit"}]}

    @app.get("/health")
    async def health():
        scheduler = completions.scheduler
        return {"status": "ok", "model": config.model_name, "queued": scheduler.queued, "running": scheduler.running,
                "max_batch_size": scheduler.max_batch_size, "max_queue": scheduler.max_queue}

    return app
