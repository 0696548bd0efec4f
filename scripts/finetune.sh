#!/usr/bin/env bash
# Stage 2 (visual instruction tuning): projector + LLM learn on multi-turn conversations with the
# `v1` template, starting from the stage-1 projector; the vision tower stays frozen. The output
# folder opens with `load_pretrained_model`.
#
#   bash scripts/finetune.sh                 # embedded CPU default, after scripts/pretrain.sh
#   MODEL_PATH=... VISION_TOWER=... DATA_PATH=... IMAGE_FOLDER=... bash scripts/finetune.sh
#
# GPU recipe settings (LLaVA-1.5-7B, DeepSpeed ZeRO-3):
#   MODEL_PATH       LLM folder, e.g. vicuna-7b-v1.5 (the same as stage 1)
#   VISION_TOWER     tower folder (the same as stage 1)
#   DATA_PATH        llava_v1_5_mix665k.json
#   IMAGE_FOLDER     its image root (coco, gqa, ocr_vqa, textvqa, vg)
#   PRETRAIN_DIR     stage-1 output, default checkpoints/llava-v1.5-7b-vitsplit-pretrain
#   NUM_GPUS         GPUs per node (default: all on this node); the global batch stays 128
#   NUM_NODES        nodes (default 1); more need HOSTFILE (see docs/training.md, "Running at scale")
#   HOSTFILE         DeepSpeed hostfile, one "hostname slots=GPUS" line per node
#   NO_SSH, NODE_RANK  NO_SSH=1: run this script on every node with its NODE_RANK (no pdsh/ssh)
#   MASTER_ADDR, MASTER_PORT  node 0's address and port (DeepSpeed's defaults: first host, 29500)
#   PER_DEVICE_BATCH per-device batch (default 16, lowered when GPUs x nodes exceed the global batch)
#   DRY_RUN=1        print the launch command instead of running it
#   OUTPUT_DIR       default checkpoints/llava-v1.5-7b-vitsplit
#   PROJECTOR, VITSPLIT_PRESET  as for stage 1 (must match it)
#   DEEPSPEED_CONFIG default scripts/zero3.json (scripts/zero3_offload.json for less GPU memory)
#   REPORT_TO        default none (LLaVA uses wandb)
# Any argument is passed on to `python -m llava_vitsplit.train` (and wins over the defaults).
source "$(dirname "$0")/common.sh"

if [[ "$RECIPE" == quickstart ]]; then
    PRETRAIN_DIR="${PRETRAIN_DIR:-$(quickstart_dir pretrain)}"
    if [[ ! -f "$PRETRAIN_DIR/mm_projector.safetensors" ]]; then
        echo "no stage-1 projector in $PRETRAIN_DIR: run scripts/pretrain.sh first" >&2
        exit 2
    fi
    quickstart_weights
    quickstart_scenes
    exec "$PYTHON" -m llava_vitsplit.train \
        --model_name_or_path "$QUICKSTART_LLM" \
        --vision_tower "$QUICKSTART_TOWER" \
        --version v1 \
        --data_path "$QUICKSTART_DATA/finetune.json" \
        --image_folder "$QUICKSTART_DATA" \
        "${PROJECTOR_ARGS[@]}" \
        --image_size 112 \
        --pretrain_mm_mlp_adapter "$PRETRAIN_DIR/mm_projector.safetensors" \
        --image_aspect_ratio pad \
        --group_by_modality_length True \
        --output_dir "${OUTPUT_DIR:-$(quickstart_dir finetune)}" \
        --use_cpu True \
        --vision_feature_cache "$QUICKSTART_FEATURE_CACHE" \
        --bf16 True \
        --num_train_epochs 3 \
        --per_device_train_batch_size 4 \
        --gradient_accumulation_steps 1 \
        --learning_rate 2e-4 \
        --mm_projector_lr "$QUICKSTART_PROJECTOR_LR" \
        "${QUICKSTART_TASK_HEAD_ARGS[@]}" \
        --weight_decay 0. \
        --warmup_ratio 0.03 \
        --lr_scheduler_type cosine \
        --model_max_length 512 \
        --save_strategy steps \
        --save_steps 100 \
        --save_total_limit 1 \
        --logging_steps 5 \
        --dataloader_num_workers 0 \
        --report_to none \
        "$@"
fi

require_env VISION_TOWER DATA_PATH IMAGE_FOLDER
PRETRAIN_DIR="${PRETRAIN_DIR:-checkpoints/llava-v1.5-7b-vitsplit-pretrain}"
plan_gpu_batch 128 16
launch_deepspeed --module llava_vitsplit.train \
    --deepspeed "${DEEPSPEED_CONFIG:-scripts/zero3.json}" \
    --model_name_or_path "$MODEL_PATH" \
    --version v1 \
    --data_path "$DATA_PATH" \
    --image_folder "$IMAGE_FOLDER" \
    --vision_tower "$VISION_TOWER" \
    "${PROJECTOR_ARGS[@]}" \
    --pretrain_mm_mlp_adapter "$PRETRAIN_DIR/mm_projector.safetensors" \
    --mm_vision_select_layer -2 \
    --image_aspect_ratio pad \
    --group_by_modality_length True \
    --bf16 True \
    --tf32 True \
    --output_dir "${OUTPUT_DIR:-checkpoints/llava-v1.5-7b-vitsplit}" \
    --num_train_epochs 1 \
    --per_device_train_batch_size $PER_DEVICE \
    --gradient_accumulation_steps "$ACCUM" \
    --save_strategy steps \
    --save_steps 50000 \
    --save_total_limit 1 \
    --learning_rate 2e-5 \
    --weight_decay 0. \
    --warmup_ratio 0.03 \
    --lr_scheduler_type cosine \
    --logging_steps 1 \
    --model_max_length 2048 \
    --gradient_checkpointing True \
    --dataloader_num_workers 4 \
    --lazy_preprocess True \
    --report_to "${REPORT_TO:-none}" \
    "$@"
