# Shared by pretrain.sh, finetune.sh and finetune_lora.sh (sourced, not run).
#
# Two recipes:
# - no MODEL_PATH: the CPU quick start (RECIPE=quickstart) - the real DINOv2-S/14 tower and the real
#   SmolLM2-135M LLM (fetched once into the cache by `llava-vitsplit fetch-quickstart-weights`) on the
#   generated scenes in playground/data/scenes, one process, bf16 autocast.
# - MODEL_PATH set: LLaVA-1.5-7B + ViT-Split with the authors' hyper-parameters, on GPUs through the
#   `deepspeed` launcher.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PYTHON="$REPO_ROOT/.venv/bin/python"; else PYTHON=python; fi
fi

# DEMO_DATA and DEMO_CHECKPOINTS are the old names of QUICKSTART_DATA and QUICKSTART_CHECKPOINTS,
# still read for one release.
if [[ -n "${DEMO_DATA:-}${DEMO_CHECKPOINTS:-}" ]]; then
    echo "note: DEMO_DATA/DEMO_CHECKPOINTS are now QUICKSTART_DATA/QUICKSTART_CHECKPOINTS" >&2
fi
QUICKSTART_DATA="${QUICKSTART_DATA:-${DEMO_DATA:-playground/data/scenes}}"
QUICKSTART_CHECKPOINTS="${QUICKSTART_CHECKPOINTS:-${DEMO_CHECKPOINTS:-playground/checkpoints}}"
# The frozen tower's hidden states per image, shared by both stages (docs/training.md, "Faster
# training"): the features are bitwise those the tower computes, so the learned result is unchanged.
QUICKSTART_FEATURE_CACHE="${QUICKSTART_FEATURE_CACHE:-$QUICKSTART_CHECKPOINTS/vision-features}"

if [[ -n "${MODEL_PATH:-}" ]]; then RECIPE=gpu; else RECIPE=quickstart; fi

# quickstart_dir STAGE: the quick start's output folder for STAGE (pretrain, finetune, finetune-lora):
# quickstart-STAGE, or demo-STAGE where an earlier release trained it and no quickstart-STAGE exists.
quickstart_dir() {
    local new="$QUICKSTART_CHECKPOINTS/quickstart-$1" old="$QUICKSTART_CHECKPOINTS/demo-$1"
    if [[ ! -e "$new" && -e "$old" ]]; then
        echo "note: using $old (the quick start's folders are now named quickstart-*)" >&2
        echo "$old"
    else
        echo "$new"
    fi
}

# Paths of the converted quick-start weights (fetched and converted on first use, then read from the cache).
quickstart_weights() {
    "$PYTHON" -m llava_vitsplit fetch-quickstart-weights >&2
    read -r QUICKSTART_TOWER QUICKSTART_LLM < <("$PYTHON" -c \
        'from llava_vitsplit.quickstart.weights import fetch_quickstart_weights as f; w = f(); print(w.dinov2_small, w.smollm2_135m)')
}

quickstart_scenes() {
    "$PYTHON" -m llava_vitsplit make-scenes --out "$QUICKSTART_DATA" --quiet >&2
}

# Sets GPUS (per node), NODES, PER_DEVICE and ACCUM so that per-device batch x accumulation x GPUs x
# nodes = the recipe's global batch ($1). The recipe's per-device batch ($2, or PER_DEVICE_BATCH) is
# lowered when GPUs x nodes alone would exceed the global batch.
plan_gpu_batch() {
    local global=$1
    GPUS=$(gpu_count)
    NODES=$(node_count)
    local world=$(( GPUS * NODES ))
    PER_DEVICE=${PER_DEVICE_BATCH:-$2}
    if [[ -z "${PER_DEVICE_BATCH:-}" ]] && (( PER_DEVICE * world > global )); then PER_DEVICE=$(( global / world )); fi
    if (( PER_DEVICE < 1 || global % (PER_DEVICE * world) != 0 )); then
        echo "global batch $global is not a multiple of per-device batch $PER_DEVICE x $GPUS GPUs x $NODES node(s)" >&2
        exit 2
    fi
    ACCUM=$(( global / (PER_DEVICE * world) ))
    echo "global batch $global = $PER_DEVICE per device x $ACCUM accumulation x $GPUS GPUs x $NODES node(s)" >&2
}

node_count() {
    local nodes=${NUM_NODES:-1} hosts
    if ! [[ "$nodes" =~ ^[1-9][0-9]*$ ]]; then
        echo "NUM_NODES must be a positive integer, not '$nodes'" >&2
        exit 2
    fi
    if [[ -z "${HOSTFILE:-}" ]]; then
        if (( nodes > 1 )); then
            echo "NUM_NODES=$nodes needs HOSTFILE (DeepSpeed's hostfile: one 'hostname slots=GPUS' line per node)" >&2
            exit 2
        fi
    elif [[ ! -f "$HOSTFILE" ]]; then
        echo "HOSTFILE $HOSTFILE is not a file" >&2
        exit 2
    else
        hosts=$(grep -cE '^[[:space:]]*[^#[:space:]]+[[:space:]]+slots=[0-9]+' "$HOSTFILE" || true)
        if (( hosts < nodes )); then
            echo "HOSTFILE $HOSTFILE lists $hosts host(s) as 'hostname slots=N' lines; NUM_NODES is $nodes" >&2
            exit 2
        fi
    fi
    echo "$nodes"
}

# Runs (or with DRY_RUN=1 prints) the `deepspeed` launcher for GPUS x NODES (set by plan_gpu_batch).
launch_deepspeed() {
    local command=(deepspeed --num_gpus "$GPUS")
    if [[ -n "${HOSTFILE:-}" ]]; then command+=(--hostfile "$HOSTFILE" --num_nodes "$NODES"); fi
    if [[ "${NO_SSH:-0}" == 1 ]]; then
        command+=(--no_ssh --node_rank "${NODE_RANK:?NO_SSH=1 needs NODE_RANK, the index of this node (0 on the master)}")
    fi
    if [[ -n "${MASTER_ADDR:-}" ]]; then command+=(--master_addr "$MASTER_ADDR"); fi
    if [[ -n "${MASTER_PORT:-}" ]]; then command+=(--master_port "$MASTER_PORT"); fi
    command+=("$@")
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        printf '%q ' "${command[@]}"
        echo
        exit 0
    fi
    exec "${command[@]}"
}

gpu_count() {
    if [[ -n "${NUM_GPUS:-}" ]]; then echo "$NUM_GPUS"; return; fi
    local count
    count=$(nvidia-smi -L 2>/dev/null | wc -l || true)
    if [[ "$count" -lt 1 ]]; then
        echo "NUM_GPUS is not set and nvidia-smi finds no GPU" >&2
        exit 2
    fi
    echo "$count"
}

# PROJECTOR (vitsplit | mlp2x_gelu | linear) and, for vitsplit, VITSPLIT_PRESET, as arguments.
PROJECTOR="${PROJECTOR:-vitsplit}"
PROJECTOR_ARGS=(--mm_projector_type "$PROJECTOR")
if [[ "$PROJECTOR" == vitsplit ]]; then
    PROJECTOR_ARGS+=(--vitsplit_preset "${VITSPLIT_PRESET:-llava-official}")
fi

# The CPU quick start's projector learning rates. At its batch of 4, a rate of 1e-3 collapses the official
# ViT-Split projector's output tokens (a linear probe reads an object's colour off them for 36% of
# held-out objects, off the frozen tower's features for 99%); 2e-4, with the task head (a copy of a
# pretrained block) at 2e-5, keeps 84% (scripts/benchmarks/projector_probe.py).
QUICKSTART_PROJECTOR_LR=2e-4
QUICKSTART_TASK_HEAD_ARGS=()
if [[ "$PROJECTOR" == vitsplit ]]; then QUICKSTART_TASK_HEAD_ARGS=(--vitsplit_task_head_lr 2e-5); fi

require_env() {
    local name
    for name in "$@"; do
        if [[ -z "${!name:-}" ]]; then
            echo "MODEL_PATH is set, so the GPU recipe runs; it also needs $name (see the header of this script)" >&2
            exit 2
        fi
    done
}
