#!/usr/bin/env bash
# Paper Table 10: ViT-Split-L, Pascal Context 480x480, K_t=6 K_p=10 b=2, lr 1e-4, 20k iterations (Table 16: 115.8M trainable, 68.1/68.6 mIoU). DATA holds VOCdevkit/VOC2010
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/pascal_context_l.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" pascal-context-l "$@"
