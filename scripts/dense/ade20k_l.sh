#!/usr/bin/env bash
# Paper Table 10: ViT-Split-L, ADE20K 512x512, K_t=4 K_p=8 b=2 (Table 1: 88.6M trainable, 58.2 mIoU). BACKBONE: a DINOv2-L folder
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/ade20k_l.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" ade20k-l "$@"
