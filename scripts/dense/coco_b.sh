#!/usr/bin/env bash
# Paper Table 10: ViT-Split-B, COCO 2017 Mask R-CNN, K_t=11 K_p=6 b=2, patch 16, AdamW 1e-4 wd 0.05, layer decay 0.7, 1x schedule, fp16 (121.35M trainable (Table 5: 118M)).
# DATA holds annotations/instances_{train,val}2017.json + {train,val}2017/ (any COCO-format folder works)
# DATA=... [BACKBONE=...] [GPUS=...] [PRECISION=fp16] bash scripts/dense/coco_b.sh [extra dense-train args]
PRECISION=${PRECISION:-fp16} exec bash "$(dirname "$0")/train.sh" coco-b "$@"
