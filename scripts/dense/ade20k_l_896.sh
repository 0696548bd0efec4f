#!/usr/bin/env bash
# Paper Table 10: ViT-Split-L, ADE20K 896x896, K_t=4 K_p=8 b=2 (Table 2: 59.0/59.6 mIoU SS/MS). BACKBONE: a DINOv2-L folder
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/ade20k_l_896.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" ade20k-l-896 "$@"
