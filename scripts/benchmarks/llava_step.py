"""Stage-1 and stage-2 LLaVA training steps: tokens per second and, on a GPU, model FLOPs utilisation.

The shape is LLaVA-1.5's: a CLIP-L/14-336-sized tower (24 blocks, width 1024, 577 positions, 576
image tokens) and a Llama of Vicuna-7B's width (4096) with `--llm-layers` blocks (16 by default, a
3.6B model whose stage-2 full fine-tuning with AdamW fits one 141 GB H200), all random weights.
`--small` shrinks both (64 image tokens, a 4-block width-256 Llama) so that it runs on a CPU to
show that it works. Rows: the MLP projector and both ViT-Split variants, in stage 1 (the projector
learns, the LLM is frozen) and stage 2 (projector and LLM learn); `--levers` adds each with the
frozen-tower feature cache (warm: the steady state from the second epoch on) and with
`--padding_free` batches. A step is forward, backward and AdamW on one batch of generated samples
whose text lengths vary as LLaVA's do (captions of 10-60 tokens in stage 1, conversations of 50-600
in stage 2), collated by the training collator; bf16 autocast on both devices.

Model FLOPs per step are counted analytically from the parameters each token meets: a matrix of N
weights costs 2N FLOPs per token forward and 4N backward (gradients of its input and of its
weights), so a trained part costs 6N per token, a frozen part gradients flow through (the LLM and
LM head in stage 1) 4N (no weight gradients), and the frozen tower run under no_grad 2N (none when
the feature cache serves it). Tokens are the non-padding positions (LLM), the image positions
(tower, projector) and the supervised positions (LM head, which only computes those). The
attention scores' own FLOPs (quadratic in length) and embedding lookups are left out, as in the
usual 6ND count, so MFU is a slight underestimate. MFU = model FLOPs / step time / the device's
dense bf16 peak (known for H100/H200/A100, else `--peak-tflops`).

Rows on a CPU are interleaved in rounds (one step of each per round; medians), so a shared
machine's load hits every row alike; on a GPU each row runs alone, its models freed after.

    python scripts/benchmarks/llava_step.py                 # GPU, LLaVA-1.5 shape
    python scripts/benchmarks/llava_step.py --small --levers --rounds 3
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
from tqdm import tqdm
from transformers import CLIPVisionConfig, LlamaConfig

from llava_vitsplit.data.collator import LlavaDataCollator
from llava_vitsplit.data.tokenize import IGNORE_INDEX
from llava_vitsplit.model import LlavaViTSplitConfig, LlavaViTSplitForConditionalGeneration
from llava_vitsplit.model.feature_cache import VisionFeatureCache
from llava_vitsplit.train.model_setup import configure_trainable

PROJECTORS = {
    "mlp2x_gelu": dict(projector_type="mlp2x_gelu"),
    "vitsplit (paper)": dict(projector_type="vitsplit", vitsplit_variant="paper"),
    "vitsplit (official)": dict(projector_type="vitsplit", vitsplit_variant="official"),
}
LEVERS = ("", "feature cache", "padding-free")
TEXT_LENGTHS = {1: (10, 60), 2: (50, 600)}  # LLaVA-1.5: captions (stage 1), conversations (stage 2)
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}  # dense, per GPU (vendors' sheets)
PAD_ID, IMAGE_TOKEN_ID = 0, 31999


def shapes(small: bool, llm_layers: int) -> tuple[CLIPVisionConfig, LlamaConfig]:
    if small:
        tower = CLIPVisionConfig(
            hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=4,
            image_size=112, patch_size=14,
        )
        llm = LlamaConfig(
            hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=4, vocab_size=32000, max_position_embeddings=1024,
        )
        return tower, llm
    tower = CLIPVisionConfig(  # CLIP-L/14-336
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=336, patch_size=14, projection_dim=768,
    )
    llm = LlamaConfig(  # Vicuna-7B's width and vocabulary, `llm_layers` blocks
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=llm_layers, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096,
    )
    return tower, llm


def build_model(tower, llm, projector: dict, stage: int, device: torch.device):
    grid = tower.image_size // tower.patch_size
    config = LlavaViTSplitConfig(
        vision_config=tower, text_config=llm, image_token_id=IMAGE_TOKEN_ID, image_seq_length=grid * grid,
        vision_feature_layer=-2, **projector,
    )
    model = LlavaViTSplitForConditionalGeneration(config).to(device)
    stage_args = SimpleNamespace(tune_mm_mlp_adapter=stage == 1, freeze_backbone=False)
    model = configure_trainable(model, stage_args, SimpleNamespace(lora_enable=False, freeze_mm_mlp_adapter=False))
    return model.train()


def make_samples(stage: int, batch_size: int, image_tokens: int, image_size: int, seed: int) -> list[dict]:
    """Samples shaped like LLaVA's: image tokens, then text whose second half is supervised."""
    generator = torch.Generator().manual_seed(seed)
    low, high = TEXT_LENGTHS[stage]
    samples = []
    for _ in range(batch_size):
        length = int(torch.randint(low, high + 1, (1,), generator=generator))
        text = torch.randint(3, IMAGE_TOKEN_ID, (length,), generator=generator)
        ids = torch.cat([torch.tensor([1]), torch.full((image_tokens,), IMAGE_TOKEN_ID), text])
        labels = torch.full_like(ids, IGNORE_INDEX)
        supervised = length if stage == 1 else length // 2
        labels[-supervised:] = ids[-supervised:]
        pixels = torch.randn(1, 3, image_size, image_size, generator=generator)
        samples.append({"input_ids": ids, "labels": labels, "pixel_values": pixels})
    return samples


def model_flops(model, batch: dict, stage: int, tower_cached: bool) -> float:
    """FLOPs of one step by the parameter count each token meets (see the module docstring)."""
    config, inner = model.config, model.model
    adapter = inner.vision_adapter
    images = batch["pixel_values"].shape[0]
    positions = adapter.grid_size(*batch["pixel_values"].shape[-2:])
    image_tokens = images * positions[0] * positions[1]
    if config.projector_type == "vitsplit":
        deepest = max(config.split_config.needed_hidden_states)
    else:
        deepest = max(config.feature_hidden_state_indices)
    tower_params = sum(p.numel() for block in adapter.blocks[:deepest] for p in block.parameters())
    llm_params = sum(p.numel() for name, p in inner.language_model.named_parameters() if "embed_tokens" not in name)
    head_params = model.lm_head.weight.numel()
    llm_factor = 6 if stage == 2 else 4
    tokens = int(batch["input_ids"].ne(PAD_ID).sum())
    supervised = int(batch["logits_to_keep"].sum())
    projector_params = sum(p.numel() for p in inner.multi_modal_projector.parameters())
    return (
        (0 if tower_cached else 2 * tower_params * (image_tokens + images))  # + CLS per image
        + 6 * projector_params * image_tokens
        + llm_factor * llm_params * tokens
        + llm_factor * head_params * supervised
    )


@dataclass
class Row:
    stage: int
    projector: str
    lever: str
    model: torch.nn.Module | None = None
    batch: dict | None = None
    optimizer: torch.optim.Optimizer | None = None
    times: list[float] = field(default_factory=list)
    result: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"stage {self.stage}  {self.projector}{'  + ' + self.lever if self.lever else ''}"


class Benchmark:
    def __init__(self, args) -> None:
        self.args = args
        self.device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
        self.tower, self.llm = shapes(args.small, args.llm_layers)
        self.cache_dir = tempfile.TemporaryDirectory(prefix="llava_step_features_")
        levers = LEVERS if args.levers else ("",)
        self.rows = [Row(s, p, lever) for s in (1, 2) for p in PROJECTORS for lever in levers]

    def prepare(self, row: Row) -> None:
        model = build_model(self.tower, self.llm, PROJECTORS[row.projector], row.stage, self.device)
        if row.lever == "feature cache":
            model.model.vision_feature_cache = VisionFeatureCache(self.cache_dir.name, model.model.vision_tower)
        grid = self.tower.image_size // self.tower.patch_size
        samples = make_samples(row.stage, self.args.batch_size, grid * grid, self.tower.image_size, seed=row.stage)
        batch = LlavaDataCollator(PAD_ID, padding_free=row.lever == "padding-free")(samples)
        row.batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        row.model = model
        trainable = [p for p in model.parameters() if p.requires_grad]
        row.optimizer = torch.optim.AdamW(trainable, lr=1e-5)
        row.result["trainable_params"] = sum(p.numel() for p in trainable)
        row.result["flops"] = model_flops(model, row.batch, row.stage, tower_cached=row.lever == "feature cache")
        row.result["tokens"] = int(row.batch["input_ids"].ne(PAD_ID).sum())
        row.result["positions"] = row.batch["input_ids"].numel()

    def step(self, row: Row) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            loss = row.model(**row.batch).loss
        loss.backward()
        row.optimizer.step()
        row.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def release(self, row: Row) -> None:
        row.model = row.batch = row.optimizer = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def run(self) -> None:
        rounds = range(self.args.rounds + 1)  # round 0 warms up (and fills the feature cache)
        if self.device.type == "cpu":
            for row in tqdm(self.rows, desc="building"):
                self.prepare(row)
            for index in tqdm(rounds, desc="rounds"):
                for row in self.rows:
                    elapsed = self.step(row)
                    row.times += [elapsed] if index else []
            return
        for row in tqdm(self.rows, desc="rows"):
            self.prepare(row)
            torch.cuda.reset_peak_memory_stats()
            row.times = [self.step(row) for _ in rounds][1:]
            row.result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
            self.release(row)

    def peak_flops(self) -> float | None:
        if self.args.peak_tflops:
            return self.args.peak_tflops * 1e12
        if self.device.type != "cuda":
            return None
        name = torch.cuda.get_device_name()
        return next((tflops * 1e12 for key, tflops in PEAK_BF16_TFLOPS.items() if key in name), None)

    def report(self) -> list[dict]:
        peak = self.peak_flops()
        base = {(r.stage, r.projector): statistics.median(r.times) for r in self.rows if not r.lever}
        table = []
        for row in self.rows:
            step = statistics.median(row.times)
            entry = {"stage": row.stage, "projector": row.projector, "lever": row.lever or "-", **row.result}
            entry.update(
                step_s=round(step, 4),
                tokens_per_s=round(row.result["tokens"] / step, 1),
                model_tflops_per_step=round(row.result.pop("flops") / 1e12, 3),
                vs_without_levers=round(base[(row.stage, row.projector)] / step, 3),
            )
            entry["mfu"] = round(entry["model_tflops_per_step"] * 1e12 / step / peak, 4) if peak else None
            table.append(entry)
        return table


def print_table(table: list[dict], header: str) -> None:
    print(header)
    print(f"{'stage':<6}{'projector':<21}{'lever':<15}{'trainable':>14}{'step s':>9}{'tokens/s':>11}"
          f"{'speed-up':>9}{'TFLOP':>9}{'MFU':>7}")
    for e in table:
        mfu = f"{100 * e['mfu']:.1f}%" if e["mfu"] is not None else "-"
        print(f"{e['stage']:<6}{e['projector']:<21}{e['lever']:<15}{e['trainable_params']:>14,}{e['step_s']:>9.3f}"
              f"{e['tokens_per_s']:>11.1f}{e['vs_without_levers']:>9.2f}{e['model_tflops_per_step']:>9.3f}{mfu:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="a CPU-sized shape (64 image tokens, tiny Llama)")
    parser.add_argument("--llm-layers", type=int, default=16, help="Llama blocks at Vicuna-7B width (full shape)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per row (after one warm-up)")
    parser.add_argument("--levers", action="store_true", help="also rows with the feature cache and padding-free")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even where a GPU is present")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, for MFU")
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args()
    if args.rounds < 1 or args.batch_size < 1 or args.llm_layers < 1:
        parser.error("--rounds, --batch-size and --llm-layers must be at least 1")
    torch.manual_seed(0)
    benchmark = Benchmark(args)
    benchmark.run()
    table = benchmark.report()
    where = torch.cuda.get_device_name() if benchmark.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    shape = "small" if args.small else f"LLaVA-1.5 (CLIP-L/14-336, Llama 4096 x {args.llm_layers} blocks)"
    print_table(table, f"{shape}, batch {args.batch_size}, {where}, bf16 autocast, medians of {args.rounds} steps")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(table, handle, indent=1)


if __name__ == "__main__":
    main()
