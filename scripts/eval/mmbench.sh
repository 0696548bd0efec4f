#!/usr/bin/env bash
# MMBench as LLaVA-1.5 runs it: answer the TSV with LLaVA's single-prediction prompt (options as
# "A. ..." lines, "Answer with the option's letter from the given choices directly."), then write
# the upload spreadsheet, and print the accuracy when the split has answers (dev).
#
#   MODEL_PATH=playground/checkpoints/llava-vitsplit-7b bash scripts/eval/mmbench.sh
#
# Expects $EVAL_DIR/mmbench/$SPLIT.tsv (default SPLIT mmbench_dev_20230712); QUESTION_FILE may
# point at a Hub-format parquet instead. See chunks.sh for GPUs and settings.
source "$(dirname "$0")/chunks.sh"

MMBENCH_DIR="$EVAL_DIR/mmbench"
SPLIT="${SPLIT:-mmbench_dev_20230712}"
QUESTION_FILE="${QUESTION_FILE:-$MMBENCH_DIR/$SPLIT.tsv}"
ANSWERS="$MMBENCH_DIR/answers/$SPLIT/$CKPT"
answer_in_chunks "$QUESTION_FILE" "" "$ANSWERS"
"$PYTHON" -m llava_vitsplit eval score-mmbench --overwrite \
    --question-file "$QUESTION_FILE" \
    --result-file "$ANSWERS/merge.jsonl" \
    --output-file "$MMBENCH_DIR/answers_upload/$SPLIT/$CKPT.xlsx" \
    --metrics-file "$ANSWERS/metrics.json"
