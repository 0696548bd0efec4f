"""Inference cost of segmentation + depth from one trunk pass against two separate models.

Variants (each an inference forward at the given size, ``torch.inference_mode``):

* ``seg``      - one task: a DINOv2 trunk + the segmentation part (ADE20K preset: K_t=3, K_p=4)
* ``depth``    - one task: a DINOv2 trunk + the depth part (NYU preset)
* ``separate`` - two models, each with its own copy of the backbone, run one after the other
* ``shared``   - one ``DenseModel`` holding both parts: one trunk pass feeds both

Each variant runs in its own subprocess, so its memory is its own. Reported: median wall time and
median process CPU time per forward (CPU time is steadier on a shared machine), the peak memory of
the whole model + inference (``max_memory_allocated`` on GPU; growth of the peak resident set over
the process before the models were built on CPU), and every figure as a ratio of the one-task
``seg`` variant, all within one invocation. The goal: two tasks from one trunk cost at most 1.3x one.

    python scripts/benchmarks/dense_multitask.py                 # DINOv2-S, 512x512
    python scripts/benchmarks/dense_multitask.py --size b --device cuda
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from llava_vitsplit.dense.model import DenseModel
from llava_vitsplit.dense.task import DenseTaskConfig
from llava_vitsplit.split import build_backbone, get_preset, load_backbone

VARIANTS = ("seg", "depth", "separate", "shared")


def _task_configs(size: str, backbone) -> dict[str, DenseTaskConfig]:
    seg, depth = get_preset(f"ade20k-{size}"), get_preset(f"nyu-{size}")
    layers, width = backbone.config.num_hidden_layers, backbone.config.hidden_size
    shape = dict(num_layers=layers, hidden_size=width)
    class_names = tuple(f"class {i}" for i in range(seg.num_classes))
    return {
        "seg": DenseTaskConfig.from_split_config(
            "segmentation", seg.split_config(**shape), class_names=class_names
        ),
        "depth": DenseTaskConfig.from_split_config("depth", depth.split_config(**shape)),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _measure(forward, repeats: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``forward``."""
    for _ in range(warmup):
        forward()
    walls, cpus = [], []
    for _ in range(repeats):
        _sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        forward()
        _sync(device)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    start_rss = _rss_peak_bytes()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if args.backbone_path:
        backbone = load_backbone(args.backbone_path)
    else:
        backbone = build_backbone(get_preset(f"ade20k-{args.size}").backbone)
    configs = _task_configs(args.size, backbone)
    if variant == "separate":
        models = [DenseModel(copy.deepcopy(backbone), {task: configs[task]}) for task in ("seg", "depth")]
    else:
        tasks = ("seg", "depth") if variant == "shared" else (variant,)
        models = [DenseModel(backbone, {task: configs[task] for task in tasks})]
    models = [model.to(device).eval() for model in models]
    pixels = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)

    blocks_run = []
    for model in models:
        for block in model.trunk.adapter.blocks:
            block.register_forward_hook(lambda *_: blocks_run.append(1))

    def forward() -> None:
        with torch.inference_mode():
            for model in models:
                model(pixels)

    forward()
    trunk_blocks = len(blocks_run)
    wall, cpu = _measure(forward, args.repeats, args.warmup, device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _rss_peak_bytes() - start_rss
    return {"wall": wall, "cpu": cpu, "peak_bytes": peak, "trunk_blocks": trunk_blocks}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="s", choices=["s", "b", "l"], help="DINOv2 size and its presets")
    parser.add_argument(
        "--backbone-path", help="a local backbone folder (default: random weights of that size)"
    )
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--variant", choices=VARIANTS, help=argparse.SUPPRESS
    )  # internal: one variant, JSON out
    args = parser.parse_args()

    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return

    passthrough = [
        "--size",
        args.size,
        "--image-size",
        str(args.image_size),
        "--batch-size",
        str(args.batch_size),
    ]
    passthrough += ["--repeats", str(args.repeats), "--warmup", str(args.warmup), "--device", args.device]
    if args.backbone_path:
        passthrough += ["--backbone-path", args.backbone_path]
    results = {}
    for variant in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--variant", variant, *passthrough],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    one = results["seg"]
    print(
        f"device={args.device} threads={torch.get_num_threads()} DINOv2-{args.size.upper()} "
        f"image={args.image_size} batch={args.batch_size} repeats={args.repeats}"
    )
    print(
        "| variant | trunk blocks run | wall (s) | wall / seg | CPU (s) | CPU / seg | peak mem (MiB) | mem / seg |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for variant, r in results.items():
        print(
            f"| {variant} | {r['trunk_blocks']} | {r['wall']:.3f} | {r['wall'] / one['wall']:.2f}x | "
            f"{r['cpu']:.3f} | {r['cpu'] / one['cpu']:.2f}x | {r['peak_bytes'] / 2**20:.0f} | "
            f"{r['peak_bytes'] / one['peak_bytes']:.2f}x |"
        )
    shared, separate = results["shared"], results["separate"]
    print(
        f"\nseg + depth from one trunk pass: {shared['wall'] / one['wall']:.2f}x the wall time of one task "
        f"({shared['cpu'] / one['cpu']:.2f}x CPU), {shared['peak_bytes'] / one['peak_bytes']:.2f}x its memory; "
        f"two separate models: {separate['wall'] / one['wall']:.2f}x ({separate['cpu'] / one['cpu']:.2f}x CPU), "
        f"{separate['peak_bytes'] / one['peak_bytes']:.2f}x memory"
    )


if __name__ == "__main__":
    main()
