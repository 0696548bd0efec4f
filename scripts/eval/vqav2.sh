#!/usr/bin/env bash
# VQAv2 as LLaVA-1.5 runs it: answer the test-dev questions on every GPU, merge, and write the
# EvalAI upload file (all test2015 questions, unanswered ones blank, EvalAI's answer processing).
#
#   MODEL_PATH=playground/checkpoints/llava-vitsplit-7b bash scripts/eval/vqav2.sh
#
# Expects $EVAL_DIR/vqav2/{$SPLIT.jsonl, test2015/, llava_vqav2_mscoco_test2015.jsonl} (LLaVA's
# layout). SPLIT (default llava_vqav2_mscoco_test-dev2015) picks the question file, IMAGE_FOLDER
# the images, SUBMISSION_QUESTIONS the questions the upload lists; ANNOTATION_FILE (official
# annotation JSON or Hub parquet) also prints the accuracy, for a val split. See chunks.sh.
source "$(dirname "$0")/chunks.sh"

VQAV2_DIR="$EVAL_DIR/vqav2"
SPLIT="${SPLIT:-llava_vqav2_mscoco_test-dev2015}"
IMAGE_FOLDER="${IMAGE_FOLDER:-$VQAV2_DIR/test2015}"
SUBMISSION_QUESTIONS="${SUBMISSION_QUESTIONS:-$VQAV2_DIR/llava_vqav2_mscoco_test2015.jsonl}"
if [[ ! -f "$SUBMISSION_QUESTIONS" ]]; then
    echo "$SUBMISSION_QUESTIONS not found: the upload lists every test2015 question; set SUBMISSION_QUESTIONS" >&2
    exit 2
fi
ANSWERS="$VQAV2_DIR/answers/$SPLIT/$CKPT"
answer_in_chunks "$VQAV2_DIR/$SPLIT.jsonl" "$IMAGE_FOLDER" "$ANSWERS" "$VQAV2_DIR/$SPLIT.jsonl"
"$PYTHON" -m llava_vitsplit eval score-vqav2 --overwrite \
    --result-file "$ANSWERS/merge.jsonl" \
    --question-file "$SUBMISSION_QUESTIONS" --fill-missing \
    --output-file "$VQAV2_DIR/answers_upload/$SPLIT/$CKPT.json" \
    ${ANNOTATION_FILE:+--annotation-file "$ANNOTATION_FILE"} \
    --metrics-file "$ANSWERS/metrics.json"
