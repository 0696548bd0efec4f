"""`llava-vitsplit train`: the documented alias of `python -m llava_vitsplit.train`, same LLaVA arguments.

Every argument after `train` goes unchanged to the training entry point (`llava_vitsplit.train.train`),
whose own parser checks them (`llava-vitsplit train --help` lists them).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        add_help=False,  # --help is the training parser's
        help="one LLaVA training stage (= python -m llava_vitsplit.train; same arguments, see --help)",
    )
    parser.set_defaults(func=run, passes_arguments_through=True)


def run(args: argparse.Namespace) -> int:
    from llava_vitsplit.train.train import main

    return main(args.passed_through)
