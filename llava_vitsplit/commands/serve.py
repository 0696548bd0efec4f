"""`llava-vitsplit serve`: an OpenAI-compatible chat-completions API over a trained model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from llava_vitsplit.serve.options import add_server_arguments

    parser = subparsers.add_parser(
        "serve", help="OpenAI-compatible API server (/v1/chat/completions, batched, several images per message)"
    )
    add_server_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llava_vitsplit.serve.api.server import run as run_server

    return run_server(args)
