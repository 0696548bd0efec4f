#!/usr/bin/env bash
# Train one dense preset with the paper's recipe through `accelerate launch` (1..N GPUs, nodes, DeepSpeed).
#   DATA=path/to/dataset [BACKBONE=dinov2 folder] [GPUS=8] [PRECISION=bf16] [OUT=dir] \
#   [ACCELERATE_CONFIG=scripts/dense/deepspeed_zero2.yaml] bash scripts/dense/train.sh PRESET [extra dense-train args]
# The global batch stays 16 whatever GPUS is (per-device batch = 16 / GPUS).
set -euo pipefail
cd "$(dirname "$0")/../.."
PRESET=${1:?usage: train.sh PRESET [args]}
shift
launch=(accelerate launch --num_processes "${GPUS:-1}" --mixed_precision "${PRECISION:-bf16}")
if [ -n "${ACCELERATE_CONFIG:-}" ]; then
    launch+=(--config_file "$ACCELERATE_CONFIG")
fi
args=(--preset "$PRESET" --data-root "${DATA:?set DATA to the dataset folder}" --output-dir "${OUT:-playground/checkpoints/dense/$PRESET}")
if [ -n "${BACKBONE:-}" ]; then
    args+=(--backbone-path "$BACKBONE")
fi
exec "${launch[@]}" -m llava_vitsplit dense train "${args[@]}" "$@"
