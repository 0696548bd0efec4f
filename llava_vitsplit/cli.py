"""The `llava-vitsplit` command line: one subcommand per module in `llava_vitsplit.commands`.

Each command module defines `register(subparsers)`, which adds its parser and sets `func`.
Modules import their heavy dependencies inside `func`, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "llava_vitsplit.commands.presets",
    "llava_vitsplit.commands.params",
    "llava_vitsplit.commands.make_scenes",
    "llava_vitsplit.commands.eval",
    "llava_vitsplit.commands.fetch_quickstart_weights",
    "llava_vitsplit.commands.demo",
    "llava_vitsplit.commands.chat",
    "llava_vitsplit.commands.serve",
    "llava_vitsplit.commands.convert",
    "llava_vitsplit.commands.dense",
    "llava_vitsplit.commands.merge_lora",
    "llava_vitsplit.commands.export_zero",
    "llava_vitsplit.commands.heldout_check",
    "llava_vitsplit.commands.train",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llava-vitsplit",
        description="LLaVA-1.5 with a ViT-Split projector, and ViT-Split dense heads.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passes_arguments_through", False):
        args.passed_through = rest  # `train`: its own parser reads them
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
