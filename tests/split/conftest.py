import pytest
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)

TINY = dict(hidden_size=64, num_hidden_layers=6, num_attention_heads=4, patch_size=8, image_size=32)


def tiny_dinov2() -> Dinov2Model:
    # A non-trivial layer scale, so the task-head equality test sees every part of the block.
    return Dinov2Model(Dinov2Config(**TINY, layerscale_value=0.5)).eval()


def tiny_backbones():
    return {
        "dinov2": tiny_dinov2(),
        "dinov2_registers": Dinov2WithRegistersModel(
            Dinov2WithRegistersConfig(**TINY, num_register_tokens=4)
        ).eval(),
        "clip": CLIPVisionModel(CLIPVisionConfig(**TINY, intermediate_size=128)).eval(),
        "siglip": SiglipVisionModel(SiglipVisionConfig(**TINY, intermediate_size=128)).eval(),
    }


@pytest.fixture(params=["dinov2", "dinov2_registers", "clip", "siglip"])
def backbone(request):
    return tiny_backbones()[request.param]
