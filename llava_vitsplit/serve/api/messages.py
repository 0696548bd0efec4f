"""Chat messages to what the model reads: alternating turns with `<image>` where each image was sent.

OpenAI messages may put images in any user message, before, after or between text parts; each
`image_url` part becomes one `<image>` placeholder at its place (the conversation template then
applies LLaVA's rule: a turn's single image moves to the front of the turn). System messages
replace the template's system prompt. Consecutive user messages are one turn.

Images arrive as `data:` URLs. A remote http(s) URL is fetched only when the operator allowed it
(`--allow-remote-images`): otherwise any caller could make the server request any address. A
local path or `file:` URL is always refused.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.data.conversation import ASSISTANT, USER, Turn

from ..errors import ChatInputError
from ..image_input import UserImage, is_url, read_image, read_image_bytes
from .errors import bad_request
from .protocol import ImagePart, Message, TextPart

SYSTEM_ROLES = ("system", "developer")


@dataclass(frozen=True)
class ImageLimits:
    """What one request may send: images per request, pixels per image, remote URLs or not."""

    max_images: int = 4
    max_pixels: int = 4096 * 4096
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if self.max_images < 0:
            raise ValueError(f"max_images must be >= 0, got {self.max_images}")
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")


@dataclass(frozen=True)
class ImageSource:
    url: str
    where: str  # e.g. "messages[0].content[1]", for error messages


@dataclass(frozen=True)
class ChatPrompt:
    turns: tuple[Turn, ...]  # user first, alternating, ending with the user
    images: tuple[ImageSource, ...]  # in the order of the <image> placeholders
    system: str | None  # replaces the template's system prompt when given


def to_chat_prompt(messages: list[Message]) -> ChatPrompt:
    """Turns and image sources of `messages`, or a 400 naming the message that cannot be used."""
    system, turns, images = [], [], []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if message.role in SYSTEM_ROLES:
            if turns:
                raise bad_request(f"{where}: a system message must come before the conversation's first user message.",
                                  param=where)
            system.append(_text_only(message, where))
            continue
        role = USER if message.role == "user" else ASSISTANT
        text = _user_text(message, where, images) if role == USER else _text_only(message, where)
        if not text.strip():
            raise bad_request(f"{where}: the {message.role} message is empty.", param=where)
        if turns and turns[-1].role == role == USER:
            turns[-1] = Turn(USER, f"{turns[-1].text}\n{text}")
        elif (turns[-1].role if turns else ASSISTANT) == role:
            raise bad_request(f"{where}: messages must alternate between user and assistant, starting with the user.",
                              param=where)
        else:
            turns.append(Turn(role, text))
    if not turns or turns[-1].role != USER:
        raise bad_request("The last message must be from the user: it is the one the model answers.", param="messages")
    return ChatPrompt(tuple(turns), tuple(images), "\n".join(system) if system else None)


def _text_only(message: Message, where: str) -> str:
    if isinstance(message.content, str):
        text = message.content
    else:
        parts = message.content or []
        if any(isinstance(part, ImagePart) for part in parts):
            raise bad_request(f"{where}: only user messages may hold images.", param=where)
        text = "\n".join(part.text for part in parts)
    _refuse_placeholder(text, where)
    return text


def _user_text(message: Message, where: str, images: list[ImageSource]) -> str:
    if isinstance(message.content, str) or message.content is None:
        text = message.content or ""
        _refuse_placeholder(text, where)
        return text
    pieces = []
    for position, part in enumerate(message.content):
        if isinstance(part, TextPart):
            _refuse_placeholder(part.text, f"{where}.content[{position}]")
            pieces.append(part.text)
        else:
            images.append(ImageSource(part.image_url.url, f"{where}.content[{position}]"))
            pieces.append(IMAGE_TOKEN)
    return "\n".join(pieces)


def _refuse_placeholder(text: str, where: str) -> None:
    if IMAGE_TOKEN in text:
        raise bad_request(f"{where}: the text holds {IMAGE_TOKEN!r}, which this model reserves for images; "
                          "send images as image_url parts and remove it from the text.", param=where)


def read_images(sources: tuple[ImageSource, ...], limits: ImageLimits) -> list[UserImage]:
    """Decode every image of a request (checked against `limits`), or a 400 naming the bad one."""
    if len(sources) > limits.max_images:
        raise bad_request(f"The request holds {len(sources)} images; this server takes at most {limits.max_images} "
                          "per request. Send fewer images (or start the server with a larger --max-images).",
                          param="messages", code="too_many_images")
    return [_read_one(source, limits) for source in sources]


def _read_one(source: ImageSource, limits: ImageLimits) -> UserImage:
    url = source.url.strip()
    try:
        if url[:5].lower() == "data:":
            return read_image_bytes(_data_url_bytes(url, source.where), source.where, max_pixels=limits.max_pixels)
        if is_url(url.lower()):
            if not limits.allow_remote:
                raise bad_request(
                    f"{source.where}: remote image URLs are not fetched by this server. Send the image inline as a "
                    "data: URL (data:image/png;base64,...), or ask the operator to start it with --allow-remote-images.",
                    param=source.where, code="remote_image_refused")
            return read_image(url, max_pixels=limits.max_pixels)
    except ChatInputError as error:
        raise bad_request(f"{source.where}: {error}", param=source.where, code="invalid_image") from error
    raise bad_request(f"{source.where}: images cannot be read from the server's files ({url[:60]!r}); send the "
                      "image inline as a data: URL (data:image/png;base64,...).", param=source.where,
                      code="local_image_refused")


def _data_url_bytes(url: str, where: str) -> bytes:
    header, comma, payload = url.partition(",")
    media_type, *parameters = header[5:].split(";")
    if not comma or "base64" not in parameters:
        raise bad_request(f"{where}: expected a base64 data URL such as data:image/png;base64,...", param=where,
                          code="invalid_image")
    if not media_type.lower().startswith("image/"):
        raise bad_request(f"{where}: the data URL holds {media_type or 'no media type'!s}, not an image; send "
                          "a PNG, JPEG, WebP or GIF image (data:image/png;base64,...).", param=where,
                          code="invalid_image")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise bad_request(f"{where}: the data URL's base64 payload is malformed ({error}).", param=where,
                          code="invalid_image") from error
