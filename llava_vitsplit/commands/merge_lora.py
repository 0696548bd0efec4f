"""`llava-vitsplit merge-lora`: fold the adapters of a LoRA run into a full model folder."""

from __future__ import annotations

import argparse

from .outputs import add_overwrite_flag, check_output_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge-lora",
        help="merge a LoRA stage-2 run (scripts/finetune_lora.sh) into a full model folder",
        description="Rebuild the base model the LoRA run started from (its LLM and vision-tower folders are "
        "recorded in the run's llava_vitsplit_build.json), apply the adapters and the trained projector, and "
        "save the merged model with its processor.",
    )
    parser.add_argument("lora_dir", help="output folder of the LoRA run")
    parser.add_argument("output_dir", help="folder for the merged model")
    parser.add_argument("--model-base", help="LLM folder, if it moved since training")
    parser.add_argument("--vision-tower", help="vision tower folder, if it moved since training")
    add_overwrite_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llava_vitsplit.train.lora import merge_lora

    inputs = (args.lora_dir, args.model_base, args.vision_tower)
    check_output_folder("output_dir", args.output_dir, inputs, overwrite=args.overwrite)
    folder = merge_lora(args.lora_dir, args.output_dir, llm_path=args.model_base, vision_tower_path=args.vision_tower)
    print(f"merged model written to {folder}")
    return 0
