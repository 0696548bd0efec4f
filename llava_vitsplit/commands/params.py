"""`llava-vitsplit params PRESET`: trainable parameters by part (no download: meta-device backbones)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("params", help="trainable parameters of a preset, by part")
    parser.add_argument("preset", help="a preset name (see `llava-vitsplit presets`)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def count_trainable_parameters(preset_name: str) -> dict[str, int]:
    """``{"task_head", "prior_head", "fusion", [head parts], "total"}`` for a preset, built on the meta device
    (detection: ``neck``, ``fpn`` and ``head`` = RPN + RoI box and mask heads)."""
    from torch import nn

    from llava_vitsplit.split import ViTSplitHeads, adapt_backbone, build_backbone, get_preset

    preset = get_preset(preset_name)
    backbone = build_backbone(preset.backbone, patch_size=preset.patch_size, device="meta")
    config = preset.split_config()
    counts = ViTSplitHeads(config, adapt_backbone(backbone)).parameter_counts()
    head = _build_head(preset, config.resolved_fusion_width)
    pieces = head.items() if isinstance(head, nn.ModuleDict) else [("head", head)] if head is not None else []
    for name, piece in pieces:  # detection: neck, FPN, and head = RPN + RoI heads (Table 12's part)
        counts[name] = sum(p.numel() for p in piece.parameters())
    counts["total"] = sum(counts.values())
    return counts


def _build_head(preset, width: int):
    import torch
    from torch import nn

    from llava_vitsplit.dense.tasks import TASKS

    with torch.device("meta"):
        if preset.task in TASKS:
            return TASKS[preset.task].preset_head(preset, width)
        if preset.head == "llm-linear":
            from llava_vitsplit.split.presets import LLAVA_LLM_WIDTH

            return nn.Linear(width, LLAVA_LLM_WIDTH)
    return None  # no registered task builds this preset's head; it is not counted


def run(args: argparse.Namespace) -> int:
    counts = count_trainable_parameters(args.preset)
    if args.json:
        print(json.dumps({"preset": args.preset, **counts}))
        return 0
    print(f"trainable parameters of preset {args.preset}")
    for part, value in counts.items():
        print(f"  {part:<11} {value:>13,}  ({value / 1e6:.2f}M)")
    return 0
