"""`llava-vitsplit chat`: talk about an image in the terminal, answers streamed."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from llava_vitsplit.serve.options import add_chat_arguments

    parser = subparsers.add_parser("chat", help="terminal chat about an image, answers streamed")
    add_chat_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llava_vitsplit.serve.cli_chat import run as run_chat

    return run_chat(args)
