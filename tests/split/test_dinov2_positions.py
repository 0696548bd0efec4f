"""The original DINOv2 position-embedding resize: checked against the bicubic formula written out."""

import math

import pytest
import torch
from transformers import Dinov2Config, Dinov2Model

from llava_vitsplit.split import adapt_backbone
from llava_vitsplit.split.backbones.dinov2 import dinov2_position_embeddings

from .conftest import tiny_backbones

CUBIC_A = -0.75  # the cubic convolution coefficient of PyTorch's (and OpenCV's) bicubic


def cubic_weights(t: float) -> list[float]:
    """Keys' cubic convolution weights of the four taps at offsets -1, 0, 1, 2 from floor(x)."""

    def near(x):  # |x| <= 1
        return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def resize_matrix(size: int, out: int, scale: float) -> torch.Tensor:
    """Output sample i reads the input at x = (i + 0.5) / scale - 0.5 (borders clamped)."""
    matrix = torch.zeros(out, size, dtype=torch.float64)
    for i in range(out):
        x = (i + 0.5) / scale - 0.5
        base = math.floor(x)
        for tap, weight in zip(range(base - 1, base + 3), cubic_weights(x - base)):
            matrix[i, min(max(tap, 0), size - 1)] += weight
    return matrix


def original_dinov2(position_embeddings: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The original's rule written out: scale (g + 0.1) / M per axis, bicubic, CLS kept."""
    patches = position_embeddings[0, 1:].double()
    side = math.isqrt(patches.shape[0])
    square = patches.reshape(side, side, -1)
    rows = resize_matrix(side, grid[0], (grid[0] + 0.1) / side)
    cols = resize_matrix(side, grid[1], (grid[1] + 0.1) / side)
    resized = torch.einsum("is,jt,std->ijd", rows, cols, square).reshape(grid[0] * grid[1], -1)
    return torch.cat([position_embeddings[0, :1].double(), resized])[None]


@pytest.mark.parametrize("grid", [(32, 32), (34, 34), (29, 38), (64, 64)])  # 448, 480, 416x544, 896 px at /14
def test_resize_follows_the_original_formula_and_differs_from_the_exact_grid_resize(grid):
    torch.manual_seed(0)
    embeddings = torch.randn(1, 1 + 37 * 37, 8)
    ours = dinov2_position_embeddings(embeddings, grid)
    torch.testing.assert_close(ours.double(), original_dinov2(embeddings, grid), rtol=0, atol=1e-4)
    exact = torch.nn.functional.interpolate(
        embeddings[:, 1:].reshape(1, 37, 37, 8).permute(0, 3, 1, 2), size=grid, mode="bicubic"
    )
    exact = exact.permute(0, 2, 3, 1).reshape(1, -1, 8)
    assert (ours[:, 1:] - exact).abs().max() > 1e-2  # 100x the tolerance: the two rules really differ


def test_the_pretraining_grid_is_left_as_it_is():
    embeddings = torch.randn(1, 1 + 37 * 37, 8)
    assert dinov2_position_embeddings(embeddings, (37, 37)) is embeddings


def test_adapter_option_changes_only_the_position_embeddings():
    model = Dinov2Model(
        Dinov2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=8, image_size=64)
    ).eval()
    pixels = torch.randn(2, 3, 40, 56)  # a 5x7 grid from an 8x8 pretraining grid
    library, original = adapt_backbone(model), adapt_backbone(model, position_interpolation="dinov2")
    assert library.position_interpolation == "transformers"
    with torch.no_grad():
        expected = library.embed(pixels)
        got = original.embed(pixels)
        positions = dinov2_position_embeddings(model.embeddings.position_embeddings, (5, 7))
        hf_positions = model.embeddings.interpolate_pos_encoding(expected, 40, 56)
    torch.testing.assert_close(got - positions, expected - hf_positions, rtol=0, atol=1e-5)
    assert not torch.allclose(got, expected)
    square = torch.randn(1, 3, 64, 64)  # the pretraining size: both rules agree
    torch.testing.assert_close(original.embed(square), library.embed(square))


def test_the_option_is_refused_where_it_does_not_apply():
    backbones = tiny_backbones()
    with pytest.raises(ValueError, match="registers model already resizes"):
        adapt_backbone(backbones["dinov2_registers"], position_interpolation="dinov2")
    with pytest.raises(ValueError, match="choose one of"):
        adapt_backbone(backbones["dinov2"], position_interpolation="nearest")
    with pytest.raises(ValueError, match="takes no option"):
        adapt_backbone(backbones["clip"], position_interpolation="dinov2")
