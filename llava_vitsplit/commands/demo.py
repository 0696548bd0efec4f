"""`llava-vitsplit demo`: the Gradio chat demo in one process (page, API and model)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from llava_vitsplit.serve.options import add_demo_arguments

    parser = subparsers.add_parser("demo", help="Gradio chat demo: upload an image, chat, answers stream")
    add_demo_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llava_vitsplit.serve.gradio_demo import run as run_demo

    return run_demo(args)
