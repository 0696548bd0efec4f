#!/usr/bin/env bash
# The main job on the embedded default, on CPU. Until the training stages land this shows the
# split module: the presets, a parameter table, and ViT-Split run on a real photo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV=${VENV:-.venv}
"$VENV/bin/llava-vitsplit" presets
"$VENV/bin/llava-vitsplit" params ade20k-s
"$VENV/bin/python" - <<'PY'
import torch
from skimage import data

from llava_vitsplit.split import ViTSplit, build_backbone, get_preset

preset = get_preset("ade20k-s")
model = ViTSplit(build_backbone(preset.backbone), preset.split_config()).eval()
photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float().div(255)[None]
photo = torch.nn.functional.interpolate(photo, size=preset.image_size, mode="bilinear")
with torch.no_grad():
    fused = model(photo)
print(f"ViT-Split ({preset.name}) on skimage's astronaut photo {tuple(photo.shape)} -> fused map {tuple(fused.shape)}")
PY
