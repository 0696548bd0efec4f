# Shared by vqav2.sh, pope.sh and mmbench.sh (sourced, not run): LLaVA-1.5's multi-GPU answering.
#
# One `llava-vitsplit eval answer` process per GPU listed in CUDA_VISIBLE_DEVICES (default: every
# GPU nvidia-smi sees), each answering its chunk of the question file into <dir>/<N>_<i>.jsonl;
# then the chunks are merged into <dir>/merge.jsonl. Without a GPU: one chunk on the CPU.
# A rerun resumes every chunk from the answers already written (same GPU count).
#
# Settings (environment): MODEL_PATH (required), MODEL_BASE (LoRA / projector-only checkpoints),
# CKPT (name of the run, default: `eval run-name`, the checkpoint folder's name and fingerprint),
# CONV_MODE (vicuna_v1), BATCH_SIZE (8), EVAL_DIR (playground/data/eval), PYTHON (the repository's
# .venv, else python).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python; fi
fi
if [[ -z "${MODEL_PATH:-}" ]]; then
    echo "set MODEL_PATH to the checkpoint folder to evaluate" >&2
    exit 2
fi
# The answers folder: the checkpoint folder's name and its fingerprint, so two runs' final/ or
# checkpoint-1000/ folders never share answers (and a rerun of the same model resumes its own).
CKPT="${CKPT:-$("$PYTHON" -m llava_vitsplit eval run-name --model-path "$MODEL_PATH" ${MODEL_BASE:+--model-base "$MODEL_BASE"})}"
CONV_MODE="${CONV_MODE:-vicuna_v1}"
BATCH_SIZE="${BATCH_SIZE:-8}"
EVAL_DIR="${EVAL_DIR:-playground/data/eval}"

if [[ -z "${CUDA_VISIBLE_DEVICES+set}" ]]; then
    CUDA_VISIBLE_DEVICES="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | paste -sd, - || true)"
fi
if [[ -n "$CUDA_VISIBLE_DEVICES" ]]; then
    IFS=',' read -ra GPULIST <<< "$CUDA_VISIBLE_DEVICES"
    DEVICE=cuda
else
    GPULIST=("")  # one chunk, CPU
    DEVICE=cpu
fi
CHUNKS=${#GPULIST[@]}

# answer_in_chunks QUESTION_FILE IMAGE_FOLDER ANSWER_DIR [MERGE_ORDER_FILE]
# IMAGE_FOLDER may be empty (MMBench tables embed their images). MERGE_ORDER_FILE: a JSONL question
# file whose order (and completeness) the merged answers must follow.
answer_in_chunks() {
    local question_file=$1 image_folder=$2 answer_dir=$3 order_file=${4:-}
    local pids=() chunk_files=() idx failed=0
    mkdir -p "$answer_dir"
    for idx in $(seq 0 $((CHUNKS - 1))); do
        local chunk_file="$answer_dir/${CHUNKS}_${idx}.jsonl"
        chunk_files+=("$chunk_file")
        CUDA_VISIBLE_DEVICES="${GPULIST[$idx]}" "$PYTHON" -m llava_vitsplit eval answer \
            --model-path "$MODEL_PATH" ${MODEL_BASE:+--model-base "$MODEL_BASE"} \
            --question-file "$question_file" ${image_folder:+--image-folder "$image_folder"} \
            --answers-file "$chunk_file" \
            --num-chunks "$CHUNKS" --chunk-idx "$idx" \
            --batch-size "$BATCH_SIZE" --temperature 0 --conv-mode "$CONV_MODE" --device "$DEVICE" &
        pids+=($!)
    done
    for idx in "${!pids[@]}"; do
        if ! wait "${pids[$idx]}"; then
            echo "chunk $idx of $CHUNKS failed (see above); rerun this script to resume" >&2
            failed=1
        fi
    done
    if (( failed )); then exit 1; fi
    "$PYTHON" -m llava_vitsplit eval merge-answers "${chunk_files[@]}" \
        --output-file "$answer_dir/merge.jsonl" ${order_file:+--question-file "$order_file"} --overwrite
}
