"""`llava-vitsplit export-zero`: a ZeRO checkpoint's per-rank shards -> our safetensors model folder."""

from __future__ import annotations

import argparse

from .outputs import add_overwrite_flag, check_output_folder

DTYPES = ("float32", "bfloat16", "float16")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-zero",
        help="consolidate a DeepSpeed ZeRO-2/3 checkpoint folder into a model (or stage-1 projector) folder",
        description="Merge the per-rank weight shards of a checkpoint saved under --deepspeed (for example a "
        "ZeRO-3 run with stage3_gather_16bit_weights_on_model_save off) with DeepSpeed's zero_to_fp32, and "
        "write a folder that load_pretrained_model opens: config, model.safetensors and processor, or for a "
        "stage-1 checkpoint mm_projector.safetensors and its config. The shards are pickles: export only "
        "checkpoints you wrote.",
    )
    parser.add_argument("checkpoint", help="checkpoint folder holding DeepSpeed's 'latest' and global_step*/")
    parser.add_argument("output_dir", help="folder to write")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="weights' dtype (default: fp32 masters)")
    add_overwrite_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from llava_vitsplit.train.zero_export import export_zero_checkpoint

    check_output_folder("output_dir", args.output_dir, (args.checkpoint,), overwrite=args.overwrite)
    folder = export_zero_checkpoint(args.checkpoint, args.output_dir, dtype=getattr(torch, args.dtype))
    print(f"exported to {folder}")
    return 0
