#!/usr/bin/env bash
# Paper Table 10: ViT-Split-L, Cityscapes 896x896, K_t=10 K_p=8 b=2, 20k iterations (Table 3: 164.1M trainable, 85.8/86.7 mIoU). DATA holds leftImg8bit/ and gtFine/
# DATA=... [BACKBONE=...] [GPUS=...] bash scripts/dense/cityscapes_l.sh [extra dense-train args]
exec bash "$(dirname "$0")/train.sh" cityscapes-l "$@"
