#!/usr/bin/env bash
# Paper Table 10: ViT-Split-B, NYU-v2 416x544, K_t=3 (Table 10 says 4; Table 11's 37.0M is K_t=3) K_p=4 b=2 (Table 11: AbsRel 0.0853). BACKBONE: a DINOv2-B folder
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/nyu_b.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" nyu-b "$@"
