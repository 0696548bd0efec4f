"""OpenAI-style errors: an HTTP status and `{"error": {"message", "type", "param", "code"}}`.

Clients (the `openai` package, lmms-eval, chat front ends) read `error.message` and show it, and
retry on 429/503, so the message says what to change and the status says whether to retry.
"""

from __future__ import annotations


class APIError(Exception):
    """A request the server answers with an error object instead of a completion."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def server_busy(retry_after_s: int = 1) -> APIError:
    return APIError(
        503, "The server is busy: its queue of waiting requests is full. Retry in a moment, or start the "
        "server with a larger --max-queue.", type="server_overloaded", code="queue_full",
        headers={"Retry-After": str(retry_after_s)},
    )
