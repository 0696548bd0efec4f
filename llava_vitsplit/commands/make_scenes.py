"""`llava-vitsplit make-scenes`: generate the synthetic scenes dataset of the CPU quick start.

`make-sample-data` is its old name, kept working for one release (with a note on stderr).
"""

from __future__ import annotations

import argparse

_DEFAULTS = {
    "out": "playground/data/scenes",
    "num_train": 320,
    "num_heldout": 80,
    "image_size": 112,
    "seed": 0,
    "conversations_per_image": 1,
    "caption_probability": 0.3,
}


DEPRECATED_NAME = "make-sample-data"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-scenes",
        aliases=[DEPRECATED_NAME],
        help="generate the synthetic scenes dataset (LLaVA-format pretrain/finetune JSON + held-out questions)",
        description=(
            "Write simple generated scenes (1-4 coloured shapes) as PNG images with LLaVA-format "
            "pretrain.json (captions), finetune.json (multi-turn Q&A) and heldout.json (questions on "
            "held-out images, with their candidate answers). Deterministic; a rerun with the same "
            "settings leaves the folder untouched."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", default=_DEFAULTS["out"], help="output folder (the LLaVA --image_folder)")
    parser.add_argument("--num-train", type=int, default=_DEFAULTS["num_train"], help="training images")
    parser.add_argument(
        "--num-heldout", type=int, default=_DEFAULTS["num_heldout"], help="held-out images (5 questions each)"
    )
    parser.add_argument(
        "--image-size", type=int, default=_DEFAULTS["image_size"], help="image side in pixels"
    )
    parser.add_argument("--seed", type=int, default=_DEFAULTS["seed"], help="random seed")
    parser.add_argument(
        "--conversations-per-image",
        type=int,
        default=_DEFAULTS["conversations_per_image"],
        help="stage-2 conversations per training image, each with its own questions",
    )
    parser.add_argument(
        "--caption-probability",
        type=float,
        default=_DEFAULTS["caption_probability"],
        help="share of stage-2 conversations that end with the image's caption",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from llava_vitsplit.quickstart.scene_dataset import SceneDataConfig, make_scenes

    if getattr(args, "command", None) == DEPRECATED_NAME:
        print(f"note: {DEPRECATED_NAME} is now make-scenes; the old name goes in a later release", file=sys.stderr)
    config = SceneDataConfig(
        num_train=args.num_train,
        num_heldout=args.num_heldout,
        image_size=args.image_size,
        seed=args.seed,
        conversations_per_image=args.conversations_per_image,
        caption_probability=args.caption_probability,
    )
    data = make_scenes(args.out, config, progress=not args.quiet)
    state = "generated" if data.generated else "already up to date (same config and content)"
    counts = data.counts
    print(f"{data.out_dir}: {state}")
    print(
        f"  {counts['train_images']} training images: {data.pretrain_json.name} ({counts['pretrain_records']} "
        f"captions), {data.finetune_json.name} ({counts['finetune_records']} conversations, "
        f"{counts['text_only_records']} text-only)"
    )
    print(
        f"  {counts['heldout_images']} held-out images: {data.heldout_json.name} ({counts['heldout_questions']} questions)"
    )
    print(f"  content sha256 {data.content_sha256}")
    return 0
