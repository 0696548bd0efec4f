"""Entry point of lmms-eval's model registry (group `lmms_eval.models`, declared in pyproject.toml).

lmms-eval calls `manifest()` when it builds its registry, at every start: the class path is
imported only when `--model llava_vitsplit` is asked for, so other runs do not load torch here.
"""

from __future__ import annotations

MODEL_ID = "llava_vitsplit"
CLASS_PATH = "llava_vitsplit.eval.lmms_model.LlavaViTSplitLmms"


def manifest():
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=CLASS_PATH)
