#!/usr/bin/env bash
# Paper Table 10: ViT-Split-L, NYU-v2 416x544, K_t=3 K_p=4 b=6 (Table 11: 65.5M trainable, AbsRel 0.078). BACKBONE: a DINOv2-L folder
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/nyu_l.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" nyu-l "$@"
