import pytest
import torch
from torch import nn

from llava_vitsplit.split import adapt_backbone, frozen_hidden_states

EXPECTED_PREFIX = {
    "Dinov2Model": 1,
    "Dinov2WithRegistersModel": 5,
    "CLIPVisionModel": 1,
    "SiglipVisionModel": 0,
}


def test_adapter_reproduces_library_hidden_states(backbone):
    pixels = torch.randn(2, 3, 32, 32)
    reference = backbone(pixel_values=pixels, output_hidden_states=True).hidden_states
    states = frozen_hidden_states(adapt_backbone(backbone), pixels, range(len(reference)))
    assert len(reference) == backbone.config.num_hidden_layers + 1
    for index, expected in enumerate(reference):
        torch.testing.assert_close(states[index], expected, msg=f"hs[{index}]")


def test_prefix_tokens_and_non_square_grid(backbone):
    adapter = adapt_backbone(backbone)
    assert adapter.num_prefix_tokens == EXPECTED_PREFIX[type(backbone).__name__]
    pixels = torch.randn(1, 3, 24, 48)  # 3x6 patches of 8 px, not the 32x32 the model was built for
    grid = adapter.grid_size(24, 48)
    assert grid == (3, 6)
    tokens = frozen_hidden_states(adapter, pixels, [adapter.num_layers])[adapter.num_layers]
    assert tokens.shape == (1, adapter.num_prefix_tokens + 18, 64)
    assert adapter.tokens_to_map(tokens, grid).shape == (1, 64, 3, 6)


def test_unsupported_model_is_named():
    with pytest.raises(TypeError, match="no ViT-Split adapter for Linear"):
        adapt_backbone(nn.Linear(2, 2))


def test_input_smaller_than_a_patch_is_rejected(backbone):
    with pytest.raises(ValueError, match="smaller than one 8x8 patch"):
        adapt_backbone(backbone).grid_size(4, 32)


def test_tower_family_rules_live_with_the_adapters():
    from transformers import CLIPVisionConfig, Dinov2WithRegistersConfig, SiglipVisionConfig

    from llava_vitsplit.split import adapter_family, vision_family

    families = [vision_family(c) for c in (CLIPVisionConfig(), SiglipVisionConfig(), Dinov2WithRegistersConfig())]
    assert families == ["clip", "siglip", "dinov2"]
    assert [adapter_family(f).features_after_final_norm for f in families] == [False, False, True]
    with pytest.raises(ValueError, match="unknown tower family 'vit'"):
        adapter_family("vit")
