import pytest
import torch

from llava_vitsplit.split import (
    ViTSplit,
    ViTSplitConfig,
    ViTSplitHeads,
    adapt_backbone,
    config_for_backbone,
    frozen_hidden_states,
)

from .conftest import tiny_backbones, tiny_dinov2


@pytest.mark.parametrize("split_point", [None, 5])
@pytest.mark.parametrize("num_task_layers", [1, 3])
@pytest.mark.parametrize("family", ["dinov2", "clip", "siglip"])
def test_task_head_at_init_equals_frozen_output(family, num_task_layers, split_point):
    backbone = tiny_backbones()[family]
    config = config_for_backbone(
        backbone, num_task_layers=num_task_layers, num_prior_layers=2, split_point=split_point
    )
    adapter = adapt_backbone(backbone)
    heads = ViTSplitHeads(config, adapter)
    pixels = torch.randn(2, 3, 32, 32)
    end = config.resolved_split_point
    states = frozen_hidden_states(adapter, pixels, {config.task_input_index, end})
    grid = adapter.grid_size(32, 32)
    expected = adapter.tokens_to_map(adapter.final_norm(states[end]), grid)
    torch.testing.assert_close(heads.task_features(states, grid), expected)


def test_task_head_is_a_trainable_copy_not_the_frozen_block():
    backbone = tiny_dinov2()
    model = ViTSplit(backbone, config_for_backbone(backbone, num_task_layers=2, num_prior_layers=2))
    task_params = {id(p) for p in model.heads.task_head.parameters()}
    assert task_params.isdisjoint(id(p) for p in model.trunk.parameters())
    assert all(p.requires_grad for p in model.heads.task_head.parameters())


@pytest.mark.parametrize("conv", ["deformable", "plain"])
def test_fused_map_shape_on_non_square_input(conv):
    backbone = tiny_dinov2()
    config = config_for_backbone(
        backbone, num_task_layers=2, num_prior_layers=3, prior_start_layer=1, conv=conv, fusion_width=96
    )
    out = ViTSplit(backbone, config)(torch.randn(2, 3, 40, 64))
    assert out.shape == (2, 96, 5, 8)


def test_official_llava_variant_widths():
    backbone = tiny_backbones()["clip"]
    config = config_for_backbone(
        backbone,
        num_task_layers=1,
        num_prior_layers=1,
        selection="explicit",
        prior_layer_ids=(4,),
        split_point=5,
        conv="plain",
        prior_width=64,
        fusion_width=48,
        apply_final_norm=False,
    )
    heads = ViTSplit(backbone, config).heads
    assert heads.prior_head[0].in_channels == 64 and heads.prior_head[0].out_channels == 64
    assert heads.fusion[0].in_channels == 128 and heads.fusion[0].out_channels == 48
    assert config.needed_hidden_states == {4, 5}  # hs[-3] for the task head, hs[-2] for the prior


def test_config_for_another_backbone_is_rejected():
    config = ViTSplitConfig(num_layers=12, hidden_size=64, num_task_layers=1, num_prior_layers=2)
    with pytest.raises(
        ValueError, match="12 blocks of width 64, but the backbone CLIPVisionModel has 6 blocks"
    ):
        ViTSplitHeads(config, adapt_backbone(tiny_backbones()["clip"]))
