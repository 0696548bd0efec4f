#!/usr/bin/env bash
# Paper Table 10: ViT-Split-G, ADE20K 896x896, K_t=8 K_p=14 b=26, 50k iterations (Table 2: 60.2/60.8 mIoU). BACKBONE: a DINOv2-G folder
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/ade20k_g_896.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" ade20k-g-896 "$@"
