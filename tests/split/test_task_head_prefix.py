import torch

from llava_vitsplit.split import (
    ViTSplitHeads,
    adapt_backbone,
    config_for_backbone,
    frozen_hidden_states,
    get_preset,
)

from .conftest import tiny_backbones


def test_task_head_can_run_on_patch_tokens_only():
    """The authors' LLaVA release drops CLS before its task head: attention then sees the patches alone."""
    backbone = tiny_backbones()["clip"]
    adapter = adapt_backbone(backbone)
    fields = dict(num_task_layers=1, num_prior_layers=1, prior_start_layer=4, split_point=5, apply_final_norm=False)
    with_cls = ViTSplitHeads(config_for_backbone(backbone, **fields), adapter)
    patches_only = ViTSplitHeads(config_for_backbone(backbone, **fields, task_head_prefix_tokens=False), adapter)
    states = frozen_hidden_states(adapter, torch.randn(2, 3, 32, 32), {4, 5})
    grid = adapter.grid_size(32, 32)
    expected = adapter.tokens_to_map(adapter.run_block(backbone.encoder.layers[4], states[4][:, 1:]), grid, has_prefix=False)
    torch.testing.assert_close(patches_only.task_features(states, grid), expected)
    assert not torch.allclose(with_cls.task_features(states, grid), expected)


def test_official_llava_preset_drops_prefix_tokens_and_the_paper_one_keeps_them():
    assert get_preset("llava-official").split_config().task_head_prefix_tokens is False
    assert get_preset("llava").split_config().task_head_prefix_tokens is True
