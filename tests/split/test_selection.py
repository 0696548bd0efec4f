import pytest
import torch

from llava_vitsplit.split import SparseLayerGate, ViTSplit, config_for_backbone, get_preset, uniform_layer_ids

from .conftest import tiny_dinov2


@pytest.mark.parametrize(
    "preset, blocks",
    [
        ("ade20k-s", [2, 5, 8, 11]),
        ("ade20k-b", [2, 5, 8, 11]),
        ("ade20k-l", [2, 5, 8, 11, 14, 17, 20, 23]),
        ("nyu-l", [6, 11, 17, 23]),
        ("coco-b", [2, 3, 5, 7, 9, 11]),
        ("pascal-context-l", [2, 4, 6, 9, 11, 13, 16, 18, 20, 23]),
        ("llava-official", [22]),
    ],
)
def test_paper_layer_indices(preset, blocks):
    assert list(get_preset(preset).split_config().prior_block_ids) == blocks


def test_uniform_selection_rejects_repeated_blocks():
    with pytest.raises(ValueError, match=r"repeats a block: \[9, 9, 10, 11\]"):
        uniform_layer_ids(12, 4, 9)


def test_sparse_gate_is_sparse_normalised_and_straight_through():
    gate = SparseLayerGate(num_layers=6, num_prior_layers=2)
    values = gate.gates()
    assert ((values.detach() != 0).sum(dim=0) == 2).all()  # top-K_p per column survive
    torch.testing.assert_close(values.sum(dim=0), torch.ones(2))
    maps = torch.randn(1, 6, 4, 3, 3, requires_grad=True)
    gate(maps).square().sum().backward()
    assert gate.scores.grad is not None
    assert (gate.scores.grad != 0).all(), "the straight-through estimator reaches pruned scores too"


def test_sparse_gate_trains_inside_vitsplit():
    backbone = tiny_dinov2()
    model = ViTSplit(
        backbone,
        config_for_backbone(backbone, num_task_layers=1, num_prior_layers=2, selection="sparse_gate"),
    )
    assert model.config.needed_hidden_states == {5, *range(1, 7)}
    model(torch.randn(1, 3, 32, 32)).mean().backward()
    assert model.heads.gate.scores.grad.abs().sum() > 0
