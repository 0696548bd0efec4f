"""Deformable 3x3 convolution, forward + backward: ours against torchvision's and a plain 3x3 conv.

Each round times one step of every variant (input, offset and kernel gradients), so a change in
machine load hits all of them alike; the table reports medians and ratios to the plain conv,
measured in one run. The offsets are random (a few pixels), as after training.

    python scripts/benchmarks/deform_conv.py --channels 384 --size 37 --batch-size 2
    python scripts/benchmarks/deform_conv.py --bf16     # under bf16 autocast
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from torch.nn import functional as F
from torchvision.ops import deform_conv2d as torchvision_deform_conv2d
from tqdm import tqdm

from llava_vitsplit.split.deform_conv import sampled_deform_conv2d


def variants(x, offset, weight, bf16: bool) -> dict:
    """One forward closure per variant; under ``--bf16`` torchvision's runs in float32 (it has no
    bf16 kernel), which is what our CUDA path does."""

    def torchvision_step():
        if not bf16:
            return torchvision_deform_conv2d(x, offset, weight, padding=1)
        with torch.autocast(x.device.type, enabled=False):
            return torchvision_deform_conv2d(x.float(), offset.float(), weight.float(), padding=1)

    return {
        "plain 3x3 conv": lambda: F.conv2d(x, weight, padding=1),
        "ours (bilinear sampling + matmul)": lambda: sampled_deform_conv2d(
            x.to(_dtype(x, bf16)), offset, weight.to(_dtype(x, bf16)), padding=1
        ),
        "torchvision deform_conv2d": torchvision_step,
    }


def _dtype(x: torch.Tensor, bf16: bool) -> torch.dtype:
    return torch.bfloat16 if bf16 else x.dtype


def _step(forward, device: torch.device, bf16: bool) -> float:
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with autocast:
        out = forward()
    out.float().square().mean().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, default=384)
    parser.add_argument("--size", type=int, default=37, help="feature map height and width")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="run every variant under bf16 autocast")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = (args.batch_size, args.channels, args.size, args.size)
    x = torch.randn(shape, device=device, requires_grad=True)
    offset = (2 * torch.randn(args.batch_size, 18, args.size, args.size, device=device)).requires_grad_()
    weight = (torch.randn(args.channels, args.channels, 3, 3, device=device) * 0.02).requires_grad_()
    steps = variants(x, offset, weight, args.bf16)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_index in tqdm(range(args.warmup + args.rounds), desc="rounds"):
        for name, forward in steps.items():
            seconds = _step(forward, device, args.bf16)
            x.grad = offset.grad = weight.grad = None
            if round_index >= args.warmup:
                times[name].append(seconds)
    median = {name: statistics.median(t) for name, t in times.items()}
    plain = median["plain 3x3 conv"]
    print(
        f"device={device} threads={torch.get_num_threads()} shape={shape} "
        f"{'bf16 autocast' if args.bf16 else 'float32'}, forward + backward, median of {args.rounds} rounds"
    )
    print("| variant | step (s) | / plain 3x3 conv |")
    print("|---|---|---|")
    for name, seconds in median.items():
        print(f"| {name} | {seconds:.4f} | {seconds / plain:.2f}x |")


if __name__ == "__main__":
    main()
