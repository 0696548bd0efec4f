"""The chat-completions request, as the OpenAI API defines it, validated with pydantic.

Only what this server can honour is accepted: a parameter it would have to ignore (several
choices, log-probabilities, tools, penalties) is an error that names it, never silently dropped.
Unknown fields are ignored, as OpenAI-compatible servers do (clients send vendor extras).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import bad_request

MAX_STOP_STRINGS = 4  # OpenAI's limit


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageURL(_Model):
    url: str
    detail: Literal["auto", "low", "high"] = "auto"  # accepted; the model sees one fixed resolution


class TextPart(_Model):
    type: Literal["text"]
    text: str


class ImagePart(_Model):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Model):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Model):
    include_usage: bool = False


class ChatCompletionRequest(_Model):
    model: str
    messages: list[Message]
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    # Accepted at their neutral values only (lmms-eval and chat UIs send them).
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: bool = False
    tools: list | None = None

    @field_validator("stop")
    @classmethod
    def _stop_strings(cls, stop):
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > MAX_STOP_STRINGS or not all(stops):
            raise ValueError(f"give at most {MAX_STOP_STRINGS} non-empty stop strings")
        return stops

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return tuple(self.stop or ())

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def check_supported(self) -> None:
        unsupported = {
            "n": self.n != 1,
            "presence_penalty": self.presence_penalty != 0,
            "frequency_penalty": self.frequency_penalty != 0,
            "logprobs": self.logprobs,
            "tools": bool(self.tools),
        }
        for name, is_set in unsupported.items():
            if is_set:
                raise bad_request(f"'{name}' is not supported by this server; leave it out (n must be 1).", param=name)
        if not self.messages:
            raise bad_request("'messages' is empty: send at least one user message.", param="messages")


def parse_request(payload) -> ChatCompletionRequest:
    """The validated request, or a 400 that names the first bad field and says what it must be."""
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object with 'model' and 'messages'.")
    try:
        request = ChatCompletionRequest.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise bad_request(f"Invalid '{where}': {first['msg']}.", param=where) from None
    request.check_supported()
    return request

