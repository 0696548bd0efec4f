"""Stage-1 training-step time: the ViT-Split projector against LLaVA's MLP projector.

The embedded default of the quick start: the real DINOv2-S/14 tower at 112 px (64 image tokens)
and the real SmolLM2-135M, the scenes captions with the `plain` template, bf16 autocast on the
CPU, AdamW over the projector alone (stage 1). Every variant is the model `python -m
llava_vitsplit.train --tune_mm_mlp_adapter True` trains; one step is forward, backward and the
optimiser step on the same batch.

Step times are medians over rounds in which every variant runs one step, so load changes on a
shared machine hit all variants alike; ratios are taken within one invocation.

    python scripts/benchmarks/stage1_step.py --batch-size 8 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from tqdm import tqdm

from llava_vitsplit.data.collator import LlavaDataCollator
from llava_vitsplit.data.conversation import get_template
from llava_vitsplit.data.llava_dataset import LazySupervisedDataset
from llava_vitsplit.quickstart.scene_dataset import SceneDataConfig, make_scenes
from llava_vitsplit.quickstart.weights import fetch_quickstart_weights
from llava_vitsplit.train.arguments import parse_arguments
from llava_vitsplit.train.model_setup import build_model, configure_trainable

VARIANTS = {
    "vitsplit (paper)": ["--mm_projector_type", "vitsplit", "--vitsplit_preset", "llava"],
    "vitsplit (official)": ["--mm_projector_type", "vitsplit", "--vitsplit_preset", "llava-official"],
    "mlp2x_gelu": ["--mm_projector_type", "mlp2x_gelu"],
}


def build(variant_flags: list[str], weights, data, batch_size: int):
    argv = [
        "--model_name_or_path", str(weights.smollm2_135m), "--vision_tower", str(weights.dinov2_small),
        "--image_size", "112", "--version", "plain", "--tune_mm_mlp_adapter", "True",
        "--data_path", str(data.pretrain_json), "--image_folder", str(data.image_folder),
        "--output_dir", "/tmp/stage1_benchmark", "--use_cpu", "True", *variant_flags,
    ]
    model_args, data_args, training_args = parse_arguments(argv)
    model, processor, _ = build_model(model_args, training_args)
    model = configure_trainable(model, model_args, training_args).train()
    dataset = LazySupervisedDataset(
        data_args.data_path, processor.tokenizer, get_template("plain"),
        lambda image: processor.process_images([image])[0],
        image_token_id=model.config.image_token_id, image_seq_length=model.config.image_seq_length,
        image_folder=data_args.image_folder, progress=False,
    )
    batch = LlavaDataCollator(processor.tokenizer.pad_token_id)([dataset[i] for i in range(batch_size)])
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    return model, batch, optimizer, sum(p.numel() for p in trainable)


def step(model, batch, optimizer) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (after one warm-up round)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    weights = fetch_quickstart_weights()
    data = make_scenes(config=SceneDataConfig(), progress=False)
    built = {name: build(flags, weights, data, args.batch_size) for name, flags in VARIANTS.items()}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_index in tqdm(range(args.rounds + 1), desc="rounds"):
        for name, (model, batch, optimizer, _) in built.items():
            elapsed = step(model, batch, optimizer)
            if round_index:  # the first round warms up allocators and kernels
                times[name].append(elapsed)
    baseline = statistics.median(times["mlp2x_gelu"])
    rows = []
    for name, (_, batch, _, trainable) in built.items():
        median = statistics.median(times[name])
        rows.append({
            "projector": name, "trainable_params": trainable, "median_step_s": round(median, 3),
            "vs_mlp": round(median / baseline, 3), "tokens_per_sample": int(batch["attention_mask"].sum() / args.batch_size),
        })
    print(f"stage-1 step, batch {args.batch_size}, {torch.get_num_threads()} threads, medians of {args.rounds} rounds")
    print(f"{'projector':<22}{'trainable':>14}{'step (s)':>10}{'vs MLP':>8}")
    for row in rows:
        print(f"{row['projector']:<22}{row['trainable_params']:>14,}{row['median_step_s']:>10.2f}{row['vs_mlp']:>8.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
