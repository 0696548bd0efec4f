"""One Mask R-CNN training step: ViT-Split against full fine-tuning of the same backbone.

Both variants are the same detector (four-scale neck, FPN, torchvision's Mask R-CNN with its
default proposal and RoI counts) on a DINOv2 of the preset's size re-patched to 16:

* ``full``     - every backbone block trainable, the neck on the last layer (ViTDet-style)
* ``vitsplit`` - the ``coco-*`` preset: frozen trunk (no autograd) + task head, prior head, fusion

Each variant runs in its own process (so its peak memory is its own), once per round, the rounds
alternating the two; reported are medians over rounds of the median step time and of the peak
memory (``torch.cuda.max_memory_allocated`` on GPU, growth of the peak resident set over the built
model on CPU), and their ratios ViT-Split / full, all from one invocation.

    python scripts/benchmarks/detection_step.py                       # DINOv2-S, 512 px, CPU
    python scripts/benchmarks/detection_step.py --size b --image-size 1024 --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from llava_vitsplit.dense.detection import vitsplit_maskrcnn
from llava_vitsplit.dense.detection.neck import FPN_CHANNELS, SimpleFeaturePyramid
from llava_vitsplit.split import adapt_backbone, build_backbone, get_preset

VARIANTS = ("full", "vitsplit")
NUM_CLASSES = 80


class FullFineTuneBackbone(nn.Module):
    """The whole DINOv2 trainable, its last layer through the same neck and FPN."""

    out_channels = FPN_CHANNELS

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.adapter = adapt_backbone(backbone)
        width = self.adapter.hidden_size
        self.pyramid = SimpleFeaturePyramid(width)
        self.fpn = FeaturePyramidNetwork([width] * 4, FPN_CHANNELS, extra_blocks=LastLevelMaxPool())

    def forward(self, images: torch.Tensor) -> OrderedDict:
        grid = self.adapter.grid_size(*images.shape[-2:])
        hidden = self.adapter.embed(images)
        for block in self.adapter.blocks:
            hidden = self.adapter.run_block(block, hidden)
        fused = self.adapter.tokens_to_map(self.adapter.final_norm(hidden), grid)
        return self.fpn(OrderedDict((str(i), m) for i, m in enumerate(self.pyramid(fused))))


def build(variant: str, size: str, image_size: int) -> nn.Module:
    preset = get_preset(f"coco-{size}")
    backbone = build_backbone(preset.backbone)
    adapt_backbone(backbone).set_patch_size(16)
    if variant == "vitsplit":
        return vitsplit_maskrcnn(
            preset.name, NUM_CLASSES, backbone=backbone, min_size=(image_size,), max_size=image_size
        )
    return MaskRCNN(
        FullFineTuneBackbone(backbone.train()), NUM_CLASSES + 1, min_size=image_size, max_size=image_size
    )


def sample(image_size: int, device: torch.device, generator: torch.Generator):
    """One image with eight random boxes and their box-shaped masks."""
    corners = torch.rand(8, 2, generator=generator) * image_size * 0.7
    sides = 32 + torch.rand(8, 2, generator=generator) * image_size * 0.25
    boxes = torch.cat([corners, corners + sides], 1).round()
    masks = torch.zeros(8, image_size, image_size, dtype=torch.uint8)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
        mask[y0:y1, x0:x1] = 1
    target = {
        "boxes": boxes,
        "labels": torch.randint(1, NUM_CLASSES + 1, (8,), generator=generator),
        "masks": masks,
    }
    image = torch.rand(3, image_size, image_size, generator=generator)
    return [image.to(device)], [{k: v.to(device) for k, v in target.items()}]


def _peak_bytes(device: torch.device, start: int) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start


def run_variant(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build(args.variant, args.size, args.image_size).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    images, targets = sample(args.image_size, device, torch.Generator().manual_seed(0))
    start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            loss = sum(model(images, targets).values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - began)
    return {"step_s": statistics.median(times), "peak_bytes": _peak_bytes(device, start),
            "trainable": sum(p.numel() for p in params)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="s", choices=["s", "b", "l"])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per process (median)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="processes per variant, alternating")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    passed = [a for a in sys.argv[1:]]
    results = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, *passed, "--variant", variant],
                                 check=True, capture_output=True, text=True).stdout  # fmt: skip
            results[variant].append(json.loads(out.strip().splitlines()[-1]))
    summary = {
        variant: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for variant, runs in results.items()
    }
    full, split = summary["full"], summary["vitsplit"]
    print(json.dumps({"settings": vars(args), "results": summary}, indent=2))
    print(f"| DINOv2-{args.size.upper()} {args.image_size}px | trainable {split['trainable'] / 1e6:.1f}M vs "
          f"{full['trainable'] / 1e6:.1f}M | step {split['step_s']:.2f}s vs {full['step_s']:.2f}s "
          f"({split['step_s'] / full['step_s']:.2f}x) | peak memory {split['peak_bytes'] / 2**20:.0f} vs "
          f"{full['peak_bytes'] / 2**20:.0f} MiB ({split['peak_bytes'] / full['peak_bytes']:.2f}x) |")  # fmt: skip


if __name__ == "__main__":
    main()
