#!/usr/bin/env bash
# The GPU report: every step benchmark a GPU user reads, run once, its tables in one Markdown file.
#
#   bash scripts/benchmarks/gpu_report.sh [REPORT]    # default gpu_report.md; meant to fit 8 minutes on one H200
#   SMALL=1 bash scripts/benchmarks/gpu_report.sh     # the same sections at CPU-sized shapes (a dry run)
#
# Sections, all under bf16 autocast with PyTorch's sdpa attention:
#   1. split_training_step.py: ViT-Split S, B and L at 512 px against full fine-tuning and the ideal
#      (step time ratios, peak memory);
#   2. deform_conv.py: our deformable conv against torchvision's and a plain conv (float32 and bf16);
#   3. llava_step.py: stage-1 and stage-2 steps at LLaVA-1.5's shape, tokens/s and MFU.
# Each section runs under its own time limit (SECTION_LIMIT seconds); one that fails or runs out is
# written to the report as such, with the end of its output, and the next section runs.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPORT="${1:-gpu_report.md}"
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if [[ "${SMALL:-0}" == 1 ]]; then
    SPLIT_ARGS=(--sizes s --image-size 56 --steps 1 --warmup 0)
    DEFORM_ARGS=(--channels 8 --size 9 --rounds 1)
    LLAVA_ARGS=(--small --rounds 1)
    LIMIT="${SECTION_LIMIT:-600}"
else
    SPLIT_ARGS=(--sizes s b l --steps 5 --warmup 2)
    DEFORM_ARGS=()
    LLAVA_ARGS=(--rounds 3)
    LIMIT="${SECTION_LIMIT:-200}"
fi

# section TITLE COMMAND...: runs COMMAND under the time limit and appends its output to the report.
section() {
    local title=$1 output status
    shift
    echo "== $title" >&2
    output=$(mktemp)
    timeout "$LIMIT" "$@" >"$output" 2>"$output.err"
    status=$?
    {
        echo
        echo "## $title"
        echo
        echo "\`$*\`"
        echo
        echo '```'
        if ((status == 0)); then
            cat "$output"
        else
            if ((status == 124)); then echo "ran out of its ${LIMIT} s"; else echo "failed with exit code $status"; fi
            tail -n 20 "$output" "$output.err"
        fi
        echo '```'
    } >>"$REPORT"
    rm -f "$output" "$output.err"
    return 0
}

{
    echo "# GPU report"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- $("$PYTHON" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device:",
        torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)")')"
    if [[ "${SMALL:-0}" == 1 ]]; then echo "- SMALL=1: CPU-sized shapes, a dry run; not numbers to quote"; fi
} >"$REPORT"

section "ViT-Split training step against full fine-tuning (bf16)" \
    "$PYTHON" scripts/benchmarks/split_training_step.py "${SPLIT_ARGS[@]}" --bf16
section "Deformable convolution, float32" "$PYTHON" scripts/benchmarks/deform_conv.py "${DEFORM_ARGS[@]}"
section "Deformable convolution, bf16 autocast" "$PYTHON" scripts/benchmarks/deform_conv.py "${DEFORM_ARGS[@]}" --bf16
section "LLaVA stage-1 and stage-2 steps" "$PYTHON" scripts/benchmarks/llava_step.py "${LLAVA_ARGS[@]}"
echo "report: $REPORT" >&2
