#!/usr/bin/env bash
# Stage 1 (feature alignment): train only the ViT-Split projector, task head included, on
# image-caption pairs with the `plain` template; the output folder holds only the projector.
#
#   bash scripts/pretrain.sh                 # embedded CPU default (see scripts/common.sh)
#   MODEL_PATH=... VISION_TOWER=... DATA_PATH=... IMAGE_FOLDER=... bash scripts/pretrain.sh
#
# GPU recipe settings (LLaVA-1.5-7B, ViT-Split authors' hyper-parameters, DeepSpeed ZeRO-2):
#   MODEL_PATH       LLM folder, e.g. vicuna-7b-v1.5
#   VISION_TOWER     tower folder, e.g. clip-vit-large-patch14-336
#   DATA_PATH        LLaVA-Pretrain/blip_laion_cc_sbu_558k.json
#   IMAGE_FOLDER     LLaVA-Pretrain/images
#   NUM_GPUS         GPUs per node (default: all on this node); the global batch stays 256
#   NUM_NODES        nodes (default 1); more need HOSTFILE (see docs/training.md, "Running at scale")
#   HOSTFILE         DeepSpeed hostfile, one "hostname slots=GPUS" line per node
#   NO_SSH, NODE_RANK  NO_SSH=1: run this script on every node with its NODE_RANK (no pdsh/ssh)
#   MASTER_ADDR, MASTER_PORT  node 0's address and port (DeepSpeed's defaults: first host, 29500)
#   PER_DEVICE_BATCH per-device batch (default 32, lowered when GPUs x nodes exceed the global batch)
#   DRY_RUN=1        print the launch command instead of running it
#   OUTPUT_DIR       default checkpoints/llava-v1.5-7b-vitsplit-pretrain
#   PROJECTOR        vitsplit (default), mlp2x_gelu (LLaVA's) or linear
#   VITSPLIT_PRESET  default llava-official (the authors' released projector); llava = paper variant
#   REPORT_TO        default none (LLaVA uses wandb)
# Any argument is passed on to `python -m llava_vitsplit.train` (and wins over the defaults).
source "$(dirname "$0")/common.sh"

if [[ "$RECIPE" == quickstart ]]; then
    quickstart_weights
    quickstart_scenes
    exec "$PYTHON" -m llava_vitsplit.train \
        --model_name_or_path "$QUICKSTART_LLM" \
        --vision_tower "$QUICKSTART_TOWER" \
        --version plain \
        --data_path "$QUICKSTART_DATA/pretrain.json" \
        --image_folder "$QUICKSTART_DATA" \
        "${PROJECTOR_ARGS[@]}" \
        --image_size 112 \
        --tune_mm_mlp_adapter True \
        --output_dir "${OUTPUT_DIR:-$(quickstart_dir pretrain)}" \
        --use_cpu True \
        --vision_feature_cache "$QUICKSTART_FEATURE_CACHE" \
        --bf16 True \
        --num_train_epochs 1 \
        --per_device_train_batch_size 4 \
        --gradient_accumulation_steps 1 \
        --learning_rate "$QUICKSTART_PROJECTOR_LR" \
        "${QUICKSTART_TASK_HEAD_ARGS[@]}" \
        --weight_decay 0. \
        --warmup_ratio 0.03 \
        --lr_scheduler_type cosine \
        --model_max_length 256 \
        --save_strategy steps \
        --save_steps 40 \
        --save_total_limit 1 \
        --logging_steps 5 \
        --dataloader_num_workers 0 \
        --report_to none \
        "$@"
fi

require_env VISION_TOWER DATA_PATH IMAGE_FOLDER
plan_gpu_batch 256 32
launch_deepspeed --module llava_vitsplit.train \
    --deepspeed scripts/zero2.json \
    --model_name_or_path "$MODEL_PATH" \
    --version plain \
    --data_path "$DATA_PATH" \
    --image_folder "$IMAGE_FOLDER" \
    --vision_tower "$VISION_TOWER" \
    "${PROJECTOR_ARGS[@]}" \
    --tune_mm_mlp_adapter True \
    --mm_vision_select_layer -2 \
    --bf16 True \
    --tf32 True \
    --output_dir "${OUTPUT_DIR:-checkpoints/llava-v1.5-7b-vitsplit-pretrain}" \
    --num_train_epochs 1 \
    --per_device_train_batch_size $PER_DEVICE \
    --gradient_accumulation_steps "$ACCUM" \
    --save_strategy steps \
    --save_steps 24000 \
    --save_total_limit 1 \
    --learning_rate 5e-4 \
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
