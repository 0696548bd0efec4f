#!/usr/bin/env bash
# Paper Table 10: ViT-Split-S, ADE20K 512x512, K_t=3 K_p=4 b=2 (Table 1: 10.2M trainable, 51.6 mIoU). DATA holds ADEChallengeData2016
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/ade20k_s.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" ade20k-s "$@"
