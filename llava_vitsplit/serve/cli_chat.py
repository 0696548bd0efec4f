"""The terminal chat: images, a conversation typed at the prompt, answers streamed as they come.

    llava-vitsplit chat --model-path PATH --image-file FILE_OR_URL [FILE_OR_URL ...]

At the prompt: `/add FILE_OR_URL` attaches another image to the next question (several images in
one conversation), `/image FILE_OR_URL ...` starts a new conversation about other images,
`/clear` starts over with the same images, `exit` or Ctrl-D quits; Ctrl-C stops an answer that
is being written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from transformers import GenerationConfig

from .chat_session import ChatEngine, Conversation
from .errors import ChatInputError
from .generation_settings import chat_generation_config
from .image_input import UserImage, read_image
from .options import add_chat_arguments, load_engine

USER_PROMPT = "USER: "
ASSISTANT_PREFIX = "ASSISTANT: "
QUIT_WORDS = ("exit", "quit", "/exit", "/quit")


def _announce(image: UserImage, out: TextIO) -> None:
    width, height = image.image.size
    note = f" {image.describe_downscale()}" if image.downscaled else ""
    out.write(f"[image: {image.name}, {width}x{height}.{note}]\n")


def chat_loop(
    engine: ChatEngine,
    images: Sequence[UserImage],
    settings: GenerationConfig,
    *,
    read_line: Callable[[str], str] = input,
    out: TextIO | None = None,
) -> int:
    """Read questions until end of input; stream each answer to `out` (stdout). Returns the number of answers."""
    out = out or sys.stdout
    conversation = Conversation(images=list(images))
    for image in images:
        _announce(image, out)
    answers = 0
    while True:
        try:
            line = read_line(USER_PROMPT)
        except EOFError:
            out.write("\n")
            return answers
        command = line.strip()
        if command.lower() in QUIT_WORDS:
            return answers
        if command == "/clear":
            conversation.start_over(*images)
            out.write("[conversation cleared]\n")
            continue
        if command.startswith(("/image", "/add")):
            try:
                new = [read_image(source) for source in command.split()[1:]]
                if not new:
                    raise ChatInputError(f"{command.split()[0]} needs an image file or URL")
            except ChatInputError as error:
                out.write(f"[{error}]\n")
                continue
            if command.startswith("/image"):
                images = new
                conversation.start_over(*images)
            else:
                for image in new:
                    conversation.attach(image)
            for image in new:
                _announce(image, out)
            continue
        answers += _answer(engine, conversation, line, settings, out)


def _answer(engine: ChatEngine, conversation: Conversation, question: str, settings: GenerationConfig,
            out: TextIO) -> int:
    shown = ""
    replies = engine.reply(conversation, question, settings)
    try:
        for partial in replies:
            if not shown and not partial:
                continue
            if not shown:
                out.write(ASSISTANT_PREFIX)
            out.write(partial[len(shown):])
            out.flush()
            shown = partial
    except ChatInputError as error:
        out.write(f"[{error}]\n")
        return 0
    except KeyboardInterrupt:  # generation has stopped; the answer so far stays in the conversation
        out.write(" [stopped]")
    except Exception as error:  # the model failed on this question; the chat goes on
        out.write(f"[generation failed: {type(error).__name__}: {error}]\n")
        return 0
    if not shown:
        out.write(ASSISTANT_PREFIX)
    out.write("\n")
    return 1


def run(args: argparse.Namespace) -> int:
    try:
        settings = chat_generation_config(args.temperature, args.top_p, args.max_new_tokens)
        images = [read_image(source) for source in args.image_file]
    except ChatInputError as error:
        raise SystemExit(f"llava-vitsplit chat: {error}") from None
    chat_loop(load_engine(args), images, settings)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llava_vitsplit.serve.cli_chat", description=__doc__.split("\n")[0])
    add_chat_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
