"""`llava-vitsplit convert`: an original LLaVA checkpoint, a llava-hf folder or a stage-1 projector
file -> a llava_vitsplit model folder (safetensors + config + processor)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llava_vitsplit.constants import PROJECTOR_TYPES

DTYPES = ("float32", "float16", "bfloat16")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="import a LLaVA / llava-hf checkpoint or a stage-1 projector file as a llava_vitsplit folder",
        description="Convert a local checkpoint into a llava_vitsplit model folder. Every tensor is checked: "
        "missing, unexpected or mis-shaped weights are an error that names them.",
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        choices=("llava", "llava-hf", "projector"),
        help="llava: original LLaVA-1.5 folder (LlavaLlamaForCausalLM); llava-hf: transformers' Llava folder; "
        "projector: mm_projector.bin / mm_projector.safetensors (file or folder) over --base and --vision-tower",
    )
    parser.add_argument("--input", required=True, type=Path, help="the checkpoint folder or projector file")
    parser.add_argument("--output", required=True, type=Path, help="folder to write (must not hold a model yet)")
    parser.add_argument("--base", type=Path, help="projector: the LLM folder the projector was trained for")
    parser.add_argument(
        "--vision-tower",
        type=Path,
        help="llava/projector: the local vision tower folder (LLaVA records a Hub id, which is not read)",
    )
    parser.add_argument("--dtype", choices=DTYPES, help="weights dtype to write (default: the checkpoint's; fp32 for projector)")
    parser.add_argument("--projector-type", choices=PROJECTOR_TYPES, help="projector: override")
    parser.add_argument("--vitsplit-variant", choices=("official", "paper"), help="projector: override")
    parser.add_argument(
        "--vitsplit-overrides", type=json.loads, help='projector: ViT-Split fields as JSON, e.g. \'{"num_task_layers": 2}\''
    )
    parser.add_argument("--image-size", type=int, help="projector: square input size (default: the tower's)")
    parser.add_argument(
        "--image-aspect-ratio", choices=("pad", "square", "resize"), help="image geometry of the written processor"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    output = Path(args.output)
    if (output / "config.json").exists():
        raise SystemExit(f"error: {output} already holds a model (config.json); choose an empty folder")
    dtype = getattr(torch, args.dtype) if args.dtype else None
    model, processor = _import(args, dtype)
    if args.image_aspect_ratio:
        processor.image_aspect_ratio = args.image_aspect_ratio
    model.save_pretrained(output)
    processor.save_pretrained(output)
    projector = sum(p.numel() for p in model.model.multi_modal_projector.parameters())
    print(
        f"wrote {output}: {model.config.projector_type} projector ({projector / 1e6:.2f}M parameters), "
        f"{model.config.vision_config.model_type} tower, {model.config.text_config.model_type} LLM, "
        f"{model.dtype}, {model.config.image_seq_length} image tokens, image_aspect_ratio={processor.image_aspect_ratio}"
    )
    return 0


def _import(args: argparse.Namespace, dtype):
    if args.source == "llava":
        from llava_vitsplit.model.import_llava import import_llava

        return import_llava(args.input, vision_tower=args.vision_tower, dtype=dtype)
    if args.source == "llava-hf":
        from llava_vitsplit.model.import_llava_hf import import_llava_hf

        return import_llava_hf(args.input, dtype=dtype)
    if args.base is None:
        raise SystemExit("error: --from projector needs --base (the LLM folder)")
    from llava_vitsplit.model.import_projector import import_projector

    return import_projector(
        args.input,
        args.base,
        args.vision_tower,
        projector_type=args.projector_type,
        vitsplit_variant=args.vitsplit_variant,
        vitsplit_overrides=args.vitsplit_overrides,
        image_size=args.image_size,
        torch_dtype=dtype,
    )
