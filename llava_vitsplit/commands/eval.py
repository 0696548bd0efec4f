"""`llava-vitsplit eval ...`: the evaluation command group.

Each module in EVAL_COMMAND_MODULES defines `register(subparsers)` adding its `eval` subcommands,
the same contract as the top-level command modules.
"""

from __future__ import annotations

import importlib

EVAL_COMMAND_MODULES = (
    "llava_vitsplit.commands.eval_score",
    "llava_vitsplit.commands.eval_answers",
    "llava_vitsplit.commands.eval_data",
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="benchmark evaluation: answer files, scoring, local benchmark data"
    )
    eval_subparsers = parser.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND", required=True)
    for module_name in EVAL_COMMAND_MODULES:
        importlib.import_module(module_name).register(eval_subparsers)
