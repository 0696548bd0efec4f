"""Training-step cost of ViT-Split against full fine-tuning and a frozen-backbone linear probe.

Every variant trains the same segmentation head (the "linear" head of the paper) on a DINOv2
backbone of the given size at 512x512, with AdamW:

* ``full``    - full fine-tuning: every backbone block trainable, head on the last layer
* ``vitsplit``- ViT-Split (the ADE20K preset of that size): frozen trunk + task/prior/fusion + head
* ``linear``  - frozen backbone, only the head trains (Table 6's baseline)
* ``ideal``   - the frozen trunk forward alone plus the trainable part alone (from precomputed
  hidden states), timed separately and summed: the floor that ViT-Split's step can approach.

AdamW is the fused implementation for every variant (on one CPU thread it steps ViT-Split-S's
9M parameters in 0.03 s against 0.19 s for the default loop and 0.22 s for ``foreach``). ``--bf16``
runs every forward under bf16 autocast (weights and optimiser stay in float32).

Step times are medians over rounds in which every variant runs one step, so load changes on a
shared machine hit all variants alike. Peak memory is measured per variant in a fresh process, over
two steps: ``torch.cuda.max_memory_allocated`` on GPU; on CPU the peak growth of the bytes malloc
has handed out and not yet freed (its counterpart) and of the resident set (which adds the
allocator's slack), both over the built model. Ratios are taken within one invocation. As in
``dense train``, the logits are dropped before the backward.

    python scripts/benchmarks/split_training_step.py --sizes s b
    python scripts/benchmarks/split_training_step.py --sizes s b --bf16
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from llava_vitsplit.dense.heads import SegmentationHead
from llava_vitsplit.split import ViTSplit, adapt_backbone, build_backbone, get_preset

NUM_CLASSES = 150
VARIANTS = ("full", "vitsplit", "ideal", "linear")


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


def _timed(step, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _trunk_step(trunk, pixels: torch.Tensor, needed, device: torch.device, bf16: bool):
    with _autocast(device, bf16):
        return trunk(pixels, needed)


def build_steps(size: str, variants: list[str], args: argparse.Namespace) -> dict[str, list]:
    """One training-step closure per variant; ``ideal`` is two closures (trunk, trainable part)."""
    device = torch.device(args.device)
    preset = get_preset(f"ade20k-{size}")
    pixels = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    steps = {}
    for variant in variants:
        torch.manual_seed(0)
        backbone = build_backbone(preset.backbone).to(device)
        grid = adapt_backbone(backbone).grid_size(args.image_size, args.image_size)
        labels = torch.randint(0, NUM_CLASSES, (args.batch_size, 4 * grid[0], 4 * grid[1]), device=device)
        if variant in ("vitsplit", "ideal"):
            features = ViTSplit(backbone, preset.split_config())
            width = features.config.resolved_fusion_width
        else:
            features = (FullFineTune if variant == "full" else FrozenLinear)(backbone)
            width = backbone.config.hidden_size
        model = nn.ModuleDict({"features": features, "head": SegmentationHead(width, NUM_CLASSES)})
        model.to(device).train()
        optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)

        def train_step(forward_features, model=model, optimiser=optimiser, labels=labels) -> None:
            with _autocast(device, args.bf16):
                logits = model["head"](forward_features())
            loss = F.cross_entropy(logits.float(), labels)
            del logits  # as in `dense train`: the loss keeps what its backward needs, the step not the logits
            loss.backward()
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)

        if variant == "ideal":
            # The two halves of a ViT-Split step on their own: the no-grad trunk, and the trainable
            # part from hidden states computed once.
            trunk, heads, needed = features.trunk, features.heads, features.config.needed_hidden_states
            states = _trunk_step(trunk, pixels, needed, device, args.bf16)
            steps[variant] = [
                lambda trunk=trunk, needed=needed: _trunk_step(trunk, pixels, needed, device, args.bf16),
                lambda heads=heads, states=states, grid=grid, train_step=train_step: train_step(
                    lambda: heads(states, grid)
                ),
            ]
        else:
            steps[variant] = [
                lambda features=features, train_step=train_step: train_step(lambda: features(pixels))
            ]
        steps[variant].append(sum(p.numel() for p in model.parameters() if p.requires_grad))
    return steps


def measure_time(size: str, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, int]]:
    """Median step time per variant. Variants run round-robin, one step each per round, so a
    change in machine load hits all of them alike."""
    device = torch.device(args.device)
    steps = build_steps(size, list(VARIANTS), args)
    trainable = {variant: closures.pop() for variant, closures in steps.items()}
    times: dict[str, list[float]] = {variant: [] for variant in steps}
    for round_index in tqdm(range(args.warmup + args.steps), desc=f"size {size.upper()} rounds"):
        for variant, closures in steps.items():
            seconds = sum(_timed(step, device) for step in closures)
            if round_index >= args.warmup:
                times[variant].append(seconds)
    return {variant: statistics.median(t) for variant, t in times.items()}, trainable


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def _malloc_in_use() -> Callable[[], int] | None:
    """glibc's bytes handed out by ``malloc`` and not yet freed (heap + mmapped), or ``None`` off glibc."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except AttributeError:  # not glibc >= 2.33
        return None
    mallinfo2.restype = _MallInfo2

    def in_use() -> int:
        info = mallinfo2()
        return info.uordblks + info.hblkhd

    return in_use


class PeakMemory:
    """Peak growth of this process's memory while the block runs, sampled every millisecond, two ways:

    * ``rss``: the resident set, what the operating system sees. It includes the slack glibc's
      allocator keeps after frees (memory it has not returned), which varies from run to run.
      (``ru_maxrss`` cannot be used: its high-water mark is often set while the model is built.)
    * ``allocated``: the bytes allocated and not yet freed (glibc's ``mallinfo2``), the CPU analogue of
      ``torch.cuda.max_memory_allocated``; ``None`` where the C library has no ``mallinfo2``.
    """

    def __init__(self) -> None:
        self._in_use = _malloc_in_use()
        self._probes = {"rss": self._rss, **({"allocated": self._in_use} if self._in_use else {})}

    def __enter__(self) -> PeakMemory:
        self.start = {name: probe() for name, probe in self._probes.items()}
        self.peak = dict(self.start)
        self._running = True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._running = False
        self._thread.join()

    def growth(self, name: str) -> int | None:
        return self.peak[name] - self.start[name] if name in self.peak else None

    def _poll(self) -> None:
        while self._running:
            for name, probe in self._probes.items():
                self.peak[name] = max(self.peak[name], probe())
            time.sleep(0.001)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()


def measure_peak_memory(variant: str, size: str, args: argparse.Namespace) -> dict[str, int | None]:
    """Peak memory of two training steps of one variant (run in a fresh process): on GPU
    ``{"allocated": max_memory_allocated, "rss": None}``, on CPU both of ``PeakMemory``'s growths."""
    device = torch.device(args.device)
    closures = build_steps(size, [variant], args)[variant][:-1]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with PeakMemory() as peak:
        for _ in range(2):
            for step in closures:
                step()
    if device.type == "cuda":
        return {"allocated": torch.cuda.max_memory_allocated(), "rss": None}
    return {"allocated": peak.growth("allocated"), "rss": peak.growth("rss")}


def _memory_cells(peak: dict[str, dict], variant: str, kind: str) -> str:
    """``MiB | ratio to full`` of one kind of peak, ``n/a | n/a`` where it was not measured."""
    value, full = peak[variant][kind], peak["full"][kind]
    return "n/a | n/a" if value is None else f"{value / 2**20:.0f} | {value / full:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["s", "b"], choices=["s", "b", "l"])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5, help="timed rounds (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="forward passes under bf16 autocast")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant and print JSON
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.variant:
        print(json.dumps(measure_peak_memory(args.variant, args.size, args)))
        return

    passthrough = [
        "--image-size",
        str(args.image_size),
        "--batch-size",
        str(args.batch_size),
        "--device",
        args.device,
        *(["--bf16"] if args.bf16 else []),
    ]
    print(
        f"device={args.device} threads={torch.get_num_threads()} image={args.image_size} batch={args.batch_size} "
        f"{'bf16 autocast' if args.bf16 else 'float32'}"
    )
    rows = []
    for size in args.sizes:
        seconds, trainable = measure_time(size, args)
        peak = {}
        for variant in VARIANTS:
            out = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--size", size, *passthrough],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            peak[variant] = json.loads(out.strip().splitlines()[-1])
        rows.append((size, seconds, trainable, peak))
    print(
        "| size | variant | trainable | step (s) | speed-up over full | peak allocated (MiB) | allocated / full "
        "| peak RSS growth (MiB) | RSS / full |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size, seconds, trainable, peak in rows:
        for variant in VARIANTS:
            print(
                f"| {size.upper()} | {variant} | {trainable[variant] / 1e6:.2f}M | {seconds[variant]:.3f} | "
                f"{seconds['full'] / seconds[variant]:.2f}x | {_memory_cells(peak, variant, 'allocated')} | "
                f"{_memory_cells(peak, variant, 'rss')} |"
            )
    for size, seconds, _, _ in rows:
        print(
            f"size {size.upper()}: ViT-Split step = {seconds['vitsplit'] / seconds['ideal']:.2f}x the ideal step"
        )


if __name__ == "__main__":
    main()
