"""Patch 14 -> 16 (detection): the kernel is resampled and the position table keeps its 2-D layout."""

import pytest
import torch
from transformers import Dinov2Config, Dinov2Model

from llava_vitsplit.split import ViTSplit, ViTSplitConfig, adapt_backbone
from llava_vitsplit.split.backbones.patch_size import resample_patch_kernel, resample_position_grid

from .conftest import tiny_backbones


def _dinov2_patch14(side: int = 7) -> Dinov2Model:
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, patch_size=14, image_size=14 * side
    )
    return Dinov2Model(config).eval()


def _row_col_table(side: int, dim: int = 8) -> torch.Tensor:
    """Channel 0 = row, channel 1 = column, the rest a smooth mix: a table whose layout is visible."""
    rows, cols = torch.meshgrid(torch.arange(side).float(), torch.arange(side).float(), indexing="ij")
    table = torch.zeros(side * side, dim)
    table[:, 0], table[:, 1] = rows.flatten(), cols.flatten()
    table[:, 2:] = (rows + 2 * cols).flatten()[:, None]
    return table


def test_position_grid_keeps_rows_and_columns():
    resized = resample_position_grid(_row_col_table(37), (32, 32)).reshape(32, 32, -1)
    rows, cols = resized[..., 0], resized[..., 1]
    assert (rows[1:] - rows[:-1] > 0).all() and (cols[:, 1:] - cols[:, :-1] > 0).all()
    assert torch.allclose(rows[:, 0], rows[:, 17], atol=1e-4)  # a row is constant along its columns
    assert torch.allclose(cols[0], cols[20], atol=1e-4)
    assert rows[0, 0] < 0.6 and rows[-1, 0] > 35.4  # the full range survives


def test_flat_interpolation_would_scramble_the_grid():
    """What the authors do (1-D interpolation of the flattened table) breaks the row invariant the
    2-D resampling keeps: the check above is not vacuous."""
    flat = torch.nn.functional.interpolate(_row_col_table(37).T[None], size=1024, mode="linear")[0].T
    rows = flat.reshape(32, 32, -1)[..., 0]
    assert not torch.allclose(rows[:, 0], rows[:, 17], atol=1e-1)


def test_dinov2_patch16_keeps_grid_and_uniform_response():
    model = _dinov2_patch14(side=7)
    adapter = adapt_backbone(model)
    table = _row_col_table(7, 32)
    with torch.no_grad():
        model.embeddings.position_embeddings[0, 1:] = table
    before = model.embeddings.patch_embeddings.projection(torch.full((1, 3, 14, 14), 0.3))
    adapter.set_patch_size(16)
    assert adapter.patch_size == 16 and model.config.patch_size == 16
    side = 98 // 16
    positions = model.embeddings.position_embeddings[0, 1:]
    assert positions.shape == (side * side, 32)
    rows = positions.reshape(side, side, -1)[..., 0]
    assert (rows[1:, 3] > rows[:-1, 3]).all() and torch.allclose(rows[:, 0], rows[:, -1], atol=1e-4)
    after = model.embeddings.patch_embeddings.projection(torch.full((1, 3, 16, 16), 0.3))
    bias = model.embeddings.patch_embeddings.projection.bias[None, :, None, None]
    ratio = (after - bias).norm() / (before - bias).norm()
    assert abs(ratio - 1) < 0.1  # a uniform patch keeps its token's scale (unscaled: x1.31)
    hidden = model(torch.randn(1, 3, 96, 128)).last_hidden_state
    assert hidden.shape == (1, 1 + 6 * 8, 32)
    assert adapter.grid_size(96, 128) == (6, 8)


def test_vitsplit_runs_after_repatching_and_keeps_trunk_frozen():
    model = _dinov2_patch14()
    adapt_backbone(model).set_patch_size(16)
    config = ViTSplitConfig(
        num_layers=2, hidden_size=32, num_task_layers=1, num_prior_layers=1, prior_start_layer=0
    )
    split = ViTSplit(model, config)
    assert split(torch.randn(2, 3, 64, 48)).shape == (2, 32, 4, 3)
    assert not any(p.requires_grad for p in split.trunk.parameters())


def test_kernel_resample_checks_its_input():
    with pytest.raises(ValueError, match="not square"):
        resample_patch_kernel(torch.zeros(4, 3, 14, 12), 16)
    with pytest.raises(ValueError, match="square grid"):
        resample_position_grid(torch.zeros(10, 4), (3, 3))


def test_other_families_refuse_a_new_patch_size():
    with pytest.raises(NotImplementedError, match="only DINOv2"):
        adapt_backbone(tiny_backbones()["clip"]).set_patch_size(16)
