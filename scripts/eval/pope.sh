#!/usr/bin/env bash
# POPE as LLaVA-1.5 runs it: answer llava_pope_test.jsonl (COCO val2014 images), then accuracy,
# precision, recall, F1 and yes-ratio per category (adversarial, popular, random).
#
#   MODEL_PATH=playground/checkpoints/llava-vitsplit-7b bash scripts/eval/pope.sh
#
# Expects $EVAL_DIR/pope/{llava_pope_test.jsonl, val2014/, coco/coco_pope_*.json} (LLaVA's layout);
# see scripts/eval/chunks.sh for GPUs and settings. Writes answers/$CKPT/{merge.jsonl, metrics.json}.
source "$(dirname "$0")/chunks.sh"

POPE_DIR="$EVAL_DIR/pope"
ANSWERS="$POPE_DIR/answers/$CKPT"
answer_in_chunks "$POPE_DIR/llava_pope_test.jsonl" "$POPE_DIR/val2014" "$ANSWERS" "$POPE_DIR/llava_pope_test.jsonl"
"$PYTHON" -m llava_vitsplit eval score-pope --overwrite \
    --annotation-dir "$POPE_DIR/coco" \
    --question-file "$POPE_DIR/llava_pope_test.jsonl" \
    --result-file "$ANSWERS/merge.jsonl" \
    --metrics-file "$ANSWERS/metrics.json"
