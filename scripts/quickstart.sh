#!/usr/bin/env bash
# The CPU quick start, end to end: set up .venv (scripts/setup.sh), fetch the small real weights,
# generate the scenes, train stage 1 and stage 2, then ask the trained model the held-out
# questions and print its accuracy per question type next to chance.
#
#   bash scripts/quickstart.sh
#
# Rerunning it resumes an interrupted stage, and skips what is already done (weights, data, a
# finished stage). FRESH=1 retrains both stages from scratch. SEED=N trains both stages with
# `--seed N` (default: the Trainer's 42). With PYTHON set (an environment that already has the
# package's dependencies), the set-up step is skipped.
START=$SECONDS
if [[ -z "${PYTHON:-}" ]]; then bash "$(dirname "$0")/setup.sh"; fi
source "$(dirname "$0")/common.sh"
if [[ "$RECIPE" != quickstart ]]; then
    echo "quickstart.sh runs the CPU quick start only; unset MODEL_PATH (use pretrain.sh / finetune.sh for GPUs)" >&2
    exit 2
fi

PRETRAIN_OUT="$(quickstart_dir pretrain)"
FINETUNE_OUT="$(quickstart_dir finetune)"
if [[ "${FRESH:-0}" == 1 ]]; then rm -rf "$PRETRAIN_OUT" "$FINETUNE_OUT"; fi

phase() { echo; echo "=== [$(( SECONDS - START ))s] $*"; }

phase "1/5 quick-start weights (DINOv2-S/14, SmolLM2-135M)"
quickstart_weights
phase "2/5 generated scenes -> $QUICKSTART_DATA"
quickstart_scenes
# A finished stage leaves its llava_vitsplit_build.json; then it is not rerun.
phase "3/5 stage 1: projector pretraining -> $PRETRAIN_OUT"
if [[ -f "$PRETRAIN_OUT/llava_vitsplit_build.json" ]]; then echo "done before; skipped"; else
    OUTPUT_DIR="$PRETRAIN_OUT" bash scripts/pretrain.sh ${SEED:+--seed "$SEED"}; fi
phase "4/5 stage 2: instruction tuning -> $FINETUNE_OUT"
if [[ -f "$FINETUNE_OUT/llava_vitsplit_build.json" ]]; then echo "done before; skipped"; else
    OUTPUT_DIR="$FINETUNE_OUT" PRETRAIN_DIR="$PRETRAIN_OUT" bash scripts/finetune.sh ${SEED:+--seed "$SEED"}; fi
phase "5/5 held-out questions"
"$PYTHON" -m llava_vitsplit heldout-check --model-path "$FINETUNE_OUT" --data "$QUICKSTART_DATA" --dtype bfloat16 --overwrite
echo
echo "quick start finished in $(( SECONDS - START )) s"
