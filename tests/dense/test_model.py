"""Task parts over one frozen trunk: shapes, one shared trunk pass, saving and loading."""

import dataclasses
import json

import pytest
import torch

from llava_vitsplit.dense.model import DenseModel
from llava_vitsplit.dense.part import DenseTaskPart
from llava_vitsplit.dense.task import CONFIG_FILE, DenseTaskConfig

from .conftest import TINY_SPLIT, tiny_dinov2, tiny_split_config


def task_configs(backbone, **seg_split):
    split = tiny_split_config(backbone)
    seg_fields = dict(class_names=("a", "b", "c"))
    seg = (
        DenseTaskConfig.from_split_config("segmentation", split, **seg_fields)
        if not seg_split
        else DenseTaskConfig.from_split_config(
            "segmentation", type(split)(**{**split.__dict__, **seg_split}), **seg_fields
        )
    )
    return {"segmentation": seg, "depth": DenseTaskConfig.from_split_config("depth", split, min_depth=0.01)}


def count_block_calls(backbone):
    calls = []
    for index, block in enumerate(backbone.encoder.layer):
        block.register_forward_hook(lambda *_, i=index: calls.append(i))
    return calls


def test_outputs_come_back_at_the_input_size_for_any_size(backbone):
    model = DenseModel(backbone, task_configs(backbone)).eval()
    outputs = model(torch.randn(2, 3, 37, 45))
    assert outputs["segmentation"].shape == (2, 3, 37, 45)
    assert outputs["depth"].shape == (2, 1, 37, 45) and outputs["depth"].min() >= 0.01


def test_two_tasks_share_one_trunk_pass_and_match_their_single_task_outputs(backbone):
    # The seg part reads deeper (K_t=2 starts at hs[2]) than the depth part: the union is computed once.
    model = DenseModel(backbone, task_configs(backbone, num_task_layers=2)).eval()
    calls = count_block_calls(backbone)
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        both = model(pixels)
        trunk_blocks_for_both = list(calls)
        calls.clear()
        alone = {task: model(pixels, tasks=[task])[task] for task in ("segmentation", "depth")}
    assert trunk_blocks_for_both == [0, 1, 2, 3]  # each frozen block once (task heads are copies, not hooked)
    assert calls == [0, 1, 2, 3, 0, 1, 2, 3]  # two separate passes
    assert model.needed_hidden_states() == frozenset({2, 3, 4})
    for task in ("segmentation", "depth"):
        torch.testing.assert_close(both[task], alone[task])


def test_the_trunk_stops_at_the_deepest_state_any_part_needs():
    backbone = tiny_dinov2()
    split = tiny_split_config(backbone)
    shallow = type(split)(
        **{**split.__dict__, "split_point": 2, "num_prior_layers": 1, "prior_start_layer": 1}
    )
    model = DenseModel(backbone, {"depth": DenseTaskConfig.from_split_config("depth", shallow)}).eval()
    calls = count_block_calls(backbone)
    model(torch.randn(1, 3, 16, 16))
    assert calls == [0, 1]


def test_only_the_parts_learn(backbone):
    model = DenseModel(backbone, task_configs(backbone))
    outputs = model(torch.randn(2, 3, 16, 16))
    (outputs["segmentation"].mean() + outputs["depth"].mean()).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.trunk.parameters())
    assert all(p.grad is not None for p in model.parts.parameters())


def test_save_and_load_several_parts_over_one_backbone(backbone, tmp_path):
    model = DenseModel(backbone, task_configs(backbone)).eval()
    for name, part in model.parts.items():
        part.save_pretrained(tmp_path / name)
    backbone.save_pretrained(tmp_path / "backbone")
    loaded = DenseModel.from_pretrained(
        {"depth": tmp_path / "depth", "segmentation": tmp_path / "segmentation"}, tmp_path / "backbone"
    )
    pixels = torch.randn(1, 3, 24, 24)
    with torch.no_grad():
        expected, got = model(pixels), loaded(pixels)
    for task in ("segmentation", "depth"):
        torch.testing.assert_close(got[task], expected[task])
    assert json.loads((tmp_path / "segmentation" / CONFIG_FILE).read_text())["class_names"] == ["a", "b", "c"]


def test_loading_names_the_mismatched_tensor(backbone, tmp_path):
    part = DenseTaskPart(task_configs(backbone)["segmentation"], DenseModel(backbone).adapter)
    part.save_pretrained(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["class_names"] = ["a", "b"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match=r"decoder.classifier.bias has shape \(3,\), the part expects \(2,\)"
    ):
        DenseModel.from_pretrained({"segmentation": tmp_path}, backbone)


def test_parts_from_unrecorded_backbones_need_an_explicit_one(backbone, tmp_path):
    DenseTaskPart(task_configs(backbone)["depth"], DenseModel(backbone).adapter).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="pass the backbone folder"):
        DenseModel.from_pretrained({"depth": tmp_path})
    with pytest.raises(FileNotFoundError, match="no dense_task.json"):
        DenseModel.from_pretrained({"depth": tmp_path / "missing"}, backbone)


def test_a_part_for_another_backbone_shape_is_refused(backbone):
    config = task_configs(backbone)["depth"]
    other = DenseTaskConfig.from_split_config(
        "depth", type(config.split_config())(num_layers=6, hidden_size=64, **TINY_SPLIT)
    )
    with pytest.raises(ValueError, match="6 blocks"):
        DenseModel(backbone, {"depth": other})


def test_task_config_round_trips_and_rejects_unknown_fields(backbone, tmp_path):
    config = task_configs(backbone)["segmentation"]
    config.save(tmp_path)
    assert DenseTaskConfig.load(tmp_path) == config
    data = config.to_dict() | {"colour": "red"}
    with pytest.raises(ValueError, match="unknown dense task field"):
        DenseTaskConfig.from_dict(data)
    with pytest.raises(ValueError, match="class_names"):
        DenseTaskConfig.from_split_config("segmentation", config.split_config())


def test_a_part_trained_with_the_original_dinov2_resize_loads_with_it_and_refuses_another_trunk(
    backbone, tmp_path
):
    config = dataclasses.replace(task_configs(backbone)["depth"], position_interpolation="dinov2")
    DenseModel(backbone, {"depth": config}, position_interpolation="dinov2").parts["depth"].save_pretrained(
        tmp_path
    )
    model = DenseModel.from_pretrained({"depth": tmp_path}, backbone)
    assert model.adapter.position_interpolation == "dinov2"
    with pytest.raises(ValueError, match="parts sharing a trunk pass must agree"):
        DenseModel(backbone, {"depth": config})
