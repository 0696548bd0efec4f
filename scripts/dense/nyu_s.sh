#!/usr/bin/env bash
# Paper Table 10: ViT-Split-S, NYU-v2 416x544, K_t=3 K_p=4 b=2, lr 3e-4 one-cycle (Table 11: 9.3M trainable, AbsRel 0.0897). DATA holds nyu_train.txt / nyu_test.txt
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/nyu_s.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" nyu-s "$@"
