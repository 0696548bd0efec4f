"""Training-step cost of ViT-Split against full fine-tuning and a frozen-backbone linear probe.

Every variant trains the same segmentation head (the "linear" head of the paper) on a DINOv2
backbone of the given size at 512x512, with AdamW:

* ``full``    - full fine-tuning: every backbone block trainable, head on the last layer
* ``vitsplit``- ViT-Split (the ADE20K preset of that size): frozen trunk + task/prior/fusion + head
* ``linear``  - frozen backbone, only the head trains (Table 6's baseline)
* ``ideal``   - the frozen trunk forward alone plus the trainable part alone (from precomputed
  hidden states), timed separately and summed: the floor that ViT-Split's step can approach.

Each variant runs in its own subprocess so that its peak memory is its own. Peak memory is
``torch.cuda.max_memory_allocated`` on GPU and the growth of the peak resident set over the
built model on CPU. Ratios are taken within one invocation.

    python scripts/benchmarks/split_training_step.py --sizes s b
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

from llava_vitsplit.dense.heads import SegmentationHead
from llava_vitsplit.split import ViTSplit, adapt_backbone, build_backbone, get_preset

NUM_CLASSES = 150


class FullFineTune(nn.Module):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.adapter = adapt_backbone(backbone)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        grid = self.adapter.grid_size(*pixels.shape[-2:])
        hidden = self.adapter.embed(pixels)
        for block in self.adapter.blocks:
            hidden = self.adapter.run_block(block, hidden)
        return self.adapter.tokens_to_map(self.adapter.final_norm(hidden), grid)


class FrozenLinear(FullFineTune):
    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone.requires_grad_(False).eval())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return super().forward(pixels)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(step, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_variant(variant: str, size: str, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    preset = get_preset(f"ade20k-{size}")
    backbone = build_backbone(preset.backbone).to(device)
    pixels = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    grid = adapt_backbone(backbone).grid_size(args.image_size, args.image_size)
    labels = torch.randint(0, NUM_CLASSES, (args.batch_size, 4 * grid[0], 4 * grid[1]), device=device)

    if variant in ("vitsplit", "ideal"):
        features = ViTSplit(backbone, preset.split_config())
        width = features.config.resolved_fusion_width
    else:
        features = (FullFineTune if variant == "full" else FrozenLinear)(backbone)
        width = backbone.config.hidden_size
    model = (
        nn.ModuleDict({"features": features, "head": SegmentationHead(width, NUM_CLASSES)}).to(device).train()
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=1e-4)

    def train_step(forward_features) -> None:
        logits = model["head"](forward_features())
        F.cross_entropy(logits, labels).backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if variant == "ideal":
        # The two halves of a ViT-Split step, timed on their own.
        trunk, heads = features.trunk, features.heads
        needed = features.config.needed_hidden_states
        trunk_time = _time(lambda: trunk(pixels, needed), args.steps, args.warmup, device)
        states = trunk(pixels, needed)
        heads_time = _time(lambda: train_step(lambda: heads(states, grid)), args.steps, args.warmup, device)
        seconds = trunk_time + heads_time
    else:
        seconds = _time(
            lambda: train_step(lambda: model["features"](pixels)), args.steps, args.warmup, device
        )
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024  # ru_maxrss is KiB
    return {"seconds": seconds, "peak_bytes": peak, "trainable": sum(p.numel() for p in trainable)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["s", "b"], choices=["s", "b", "l"])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant and print JSON
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant:
        print(json.dumps(run_variant(args.variant, args.size, args)))
        return

    passthrough = [
        "--image-size",
        str(args.image_size),
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--device",
        args.device,
    ]
    print(
        f"device={args.device} threads={torch.get_num_threads()} image={args.image_size} batch={args.batch_size}"
    )
    print("| size | variant | trainable | step (s) | full / this | peak mem (MiB) | this / full mem |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        results = {}
        for variant in ("full", "vitsplit", "ideal", "linear"):
            out = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--size", size, *passthrough],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[variant] = json.loads(out.strip().splitlines()[-1])
        full = results["full"]
        for variant, r in results.items():
            print(
                f"| {size.upper()} | {variant} | {r['trainable'] / 1e6:.2f}M | {r['seconds']:.3f} | "
                f"{full['seconds'] / r['seconds']:.2f}x | {r['peak_bytes'] / 2**20:.0f} | "
                f"{r['peak_bytes'] / full['peak_bytes']:.2f} |"
            )
        print(
            f"| {size.upper()} | vitsplit vs ideal | | | {results['ideal']['seconds'] / results['vitsplit']['seconds']:.2f} "
            "of ideal speed | | |"
        )


if __name__ == "__main__":
    main()
