import pytest

from llava_vitsplit.dense.heads import DepthHead, SegmentationHead
from llava_vitsplit.split import ViTSplitConfig

BASE = dict(num_layers=12, hidden_size=384)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(num_task_layers=0), r"num_task_layers \(K_t\) = 0 is invalid: expected 1..12"),
        (dict(num_task_layers=13), r"num_task_layers \(K_t\) = 13 is invalid: expected 1..12"),
        (
            dict(num_task_layers=12, split_point=11),
            r"num_task_layers \(K_t\) = 12 is invalid: expected 1..11",
        ),
        (dict(num_prior_layers=0), r"num_prior_layers \(K_p\) = 0 is invalid: expected an integer >= 1"),
        (dict(prior_start_layer=9), r"prior_start_layer \(b\) = 9 is invalid: expected 0..8"),
        (dict(prior_start_layer=-1), r"prior_start_layer \(b\) = -1 is invalid"),
        (dict(split_point=13), r"split_point = 13 is invalid: expected 1..12"),
        (dict(selection="random"), r"selection = 'random' is invalid"),
        (dict(conv="dcnv2"), r"conv = 'dcnv2' is invalid: expected 'deformable' or 'plain'"),
        (dict(fusion_width=0), r"fusion_width = 0 is invalid: expected an integer >= 1"),
        (dict(prior_width=-4), r"prior_width = -4 is invalid"),
        (dict(gate_temperature=0.0), r"gate_temperature = 0.0 is invalid"),
        (
            dict(num_prior_layers=13, selection="sparse_gate"),
            r"num_prior_layers \(K_p\) = 13 is invalid: expected 1..12",
        ),
        (
            dict(num_prior_layers=2, selection="explicit", prior_layer_ids=(3, 3)),
            r"prior_layer_ids = \(3, 3\) is invalid: expected distinct block ids",
        ),
        (
            dict(num_prior_layers=2, selection="explicit", prior_layer_ids=(3, 12)),
            r"prior_layer_ids = \(3, 12\) is invalid: expected block ids in 0..11; \[12\] are not",
        ),
        (
            dict(num_prior_layers=3, selection="explicit", prior_layer_ids=(3, 4)),
            r"expected exactly num_prior_layers \(K_p\) = 3 ids",
        ),
        (dict(prior_layer_ids=(1, 2, 3, 4)), "prior_layer_ids is only used with selection='explicit'"),
    ],
)
def test_bad_values_name_the_field_and_range(fields, message):
    with pytest.raises(ValueError, match=message):
        ViTSplitConfig(**BASE, **fields)


def test_needed_hidden_states_cover_task_input_and_priors():
    config = ViTSplitConfig(**BASE, num_task_layers=3, num_prior_layers=4, prior_start_layer=2)
    assert config.task_input_index == 9
    assert config.needed_hidden_states == {9, 3, 6, 12}


def test_fusion_width_must_divide_into_the_heads_groupnorm():
    with pytest.raises(ValueError, match=r"in_channels \(fusion width\) = 100 must be divisible by 32"):
        SegmentationHead(100, num_classes=150)
    with pytest.raises(ValueError, match="in_channels / 2 = 48 must be divisible by 32"):
        DepthHead(96)


def test_to_dict_and_from_dict_round_trip_through_json():
    import json

    config = ViTSplitConfig(num_layers=12, hidden_size=64, selection="explicit", num_prior_layers=2, prior_layer_ids=(3, 9))
    data = json.loads(json.dumps(config.to_dict(exclude=("num_layers", "hidden_size"))))
    assert data["prior_layer_ids"] == [3, 9] and "num_layers" not in data
    assert ViTSplitConfig.from_dict(data, num_layers=12, hidden_size=64) == config
    with pytest.raises(ValueError, match=r"unknown ViT-Split field\(s\) \['num_blocks'\]"):
        ViTSplitConfig.from_dict({"num_blocks": 2}, num_layers=12, hidden_size=64)
    with pytest.raises(ValueError, match=r"\['num_layers'\] are set twice"):
        ViTSplitConfig.from_dict(config.to_dict(), num_layers=12)
