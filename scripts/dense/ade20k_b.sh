#!/usr/bin/env bash
# Paper Table 10: ViT-Split-B, ADE20K 512x512, K_t=3 K_p=4 b=2 (Table 1: 40.5M trainable, 55.7 mIoU). BACKBONE: a DINOv2-B folder
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/ade20k_b.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" ade20k-b "$@"
