"""The training loop: runs, logs, evaluates, checkpoints, and resumes to the very same weights."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from llava_vitsplit.dense.model import DenseModel
from llava_vitsplit.dense.part import DenseTaskPart
from llava_vitsplit.dense.recipes import get_recipe
from llava_vitsplit.dense.sampling import epoch_batches
from llava_vitsplit.dense.schedules import build_scheduler, one_cycle_factor, poly_factor
from llava_vitsplit.dense.task import DenseTaskConfig
from llava_vitsplit.dense.trainer import DenseTrainConfig, parameter_groups, train

from .conftest import (
    tiny_config,
    tiny_dinov2,
    tiny_split_config,
    write_depth_folder,
    write_segmentation_folder,
)


def test_segmentation_run_logs_evaluates_and_saves_a_loadable_part(tmp_path):
    data = write_segmentation_folder(tmp_path / "data")
    backbone = tiny_dinov2()
    result = train(tiny_config("ade20k-s", data, tmp_path / "run", eval_interval=2), backbone=backbone)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert [e["iter"] for e in result.evaluations] == [2, 4]
    assert 0 <= result.evaluations[-1]["metrics"]["mIoU"] <= 100
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "checkpoint_2",
        "checkpoint_4",
    ]
    model = DenseModel.from_pretrained({"segmentation": result.final_dir}, backbone)
    config = model.parts["segmentation"].config
    assert config.class_names == ("dark", "bright") and config.preset == "ade20k-s"
    assert config.inference.mode == "slide" and config.inference.crop_size == (
        32,
        32,
    )  # recipe scaled to the crop
    assert model(torch.randn(1, 3, 40, 48))["segmentation"].shape == (1, 2, 40, 48)


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run(tmp_path):
    data = write_depth_folder(tmp_path / "data")
    backbone = tiny_dinov2()  # frozen: both runs share it, as they would share a backbone folder
    straight = train(tiny_config("nyu-s", data, tmp_path / "straight", val_split=None), backbone=backbone)
    interrupted = tmp_path / "interrupted"
    shutil.copytree(tmp_path / "straight", interrupted)
    shutil.rmtree(interrupted / "checkpoints" / "checkpoint_4")
    shutil.rmtree(interrupted / "final")

    def logged(run):  # everything but the timings
        return [
            {k: v for k, v in json.loads(line).items() if k != "sec_per_iter"}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]

    log = logged(interrupted)
    resumed = train(tiny_config("nyu-s", data, interrupted, val_split=None, resume="auto"), backbone=backbone)
    expected, got = (
        load_file(straight.final_dir / "model.safetensors"),
        load_file(resumed.final_dir / "model.safetensors"),
    )
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6, msg=key)
    assert logged(interrupted) == log  # the same losses again, and no line twice


def test_a_checkpoint_cut_off_while_saving_is_passed_over_and_rotation_keeps_the_newest(tmp_path):
    data = write_depth_folder(tmp_path / "data")
    backbone = tiny_dinov2()
    rotated = tmp_path / "rotated"
    straight = train(
        tiny_config("nyu-s", data, rotated, val_split=None, keep_checkpoints=1), backbone=backbone
    )
    assert sorted(p.name for p in (rotated / "checkpoints").iterdir()) == [
        "checkpoint_4"
    ]  # older ones rotated out
    expected = load_file(straight.final_dir / "model.safetensors")
    run = tmp_path / "run"
    train(tiny_config("nyu-s", data, run, val_split=None), backbone=backbone)
    (run / "checkpoints" / "checkpoint_4" / "trainer_state.json").unlink()  # killed before its marker
    shutil.rmtree(run / "final")
    resumed = train(tiny_config("nyu-s", data, run, val_split=None, resume="auto"), backbone=backbone)
    got = load_file(resumed.final_dir / "model.safetensors")
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6, msg=key)
    assert (run / "checkpoints" / "checkpoint_4" / "trainer_state.json").is_file()


def test_resume_without_a_checkpoint_starts_fresh_and_a_bad_folder_is_named(tmp_path):
    data = write_depth_folder(tmp_path / "data", counts=(("train", 4),))
    config = tiny_config(
        "nyu-s", data, tmp_path / "run", val_split=None, resume="auto", iters=1, save_interval=5
    )
    assert train(config, backbone=tiny_dinov2()).final_dir.is_dir()
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        train(
            tiny_config("nyu-s", data, tmp_path / "run", val_split=None, resume=str(tmp_path)),
            backbone=tiny_dinov2(),
        )


def test_preset_and_data_must_be_the_same_task(tmp_path):
    data = write_depth_folder(tmp_path / "data", counts=(("train", 4),))
    with pytest.raises(ValueError, match="trains segmentation"):
        train(tiny_config("ade20k-s", data, tmp_path / "run", val_split=None), backbone=tiny_dinov2())


def test_a_training_set_smaller_than_a_batch_is_an_error(tmp_path):
    data = write_depth_folder(tmp_path / "data", counts=(("train", 2),))
    with pytest.raises(ValueError, match="fewer than one global batch"):
        train(tiny_config("nyu-s", data, tmp_path / "run", val_split=None), backbone=tiny_dinov2())


def test_task_head_trains_at_a_tenth_of_the_rate_and_norms_skip_weight_decay(backbone):
    config = DenseTaskConfig.from_split_config("depth", tiny_split_config(backbone))
    part = DenseTaskPart(config, DenseModel(backbone).adapter)
    config = tiny_config("nyu-s", "unused", "unused", learning_rate=2e-4, weight_decay=0.05)
    groups = parameter_groups(part, config)
    task_head = {id(p) for p in part.task_head_parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(part.parameters()))
    for group in groups:
        in_head = {id(p) in task_head for p in group["params"]}
        assert len(in_head) == 1
        assert group["lr"] == pytest.approx(2e-5 if in_head.pop() else 2e-4)
        assert group["weight_decay"] == (0.05 if group["params"][0].ndim > 1 else 0.0)


def test_poly_schedule_warms_up_linearly_then_decays_to_zero():
    assert poly_factor(0, 100, 10, 1e-6) == pytest.approx(1e-6)
    assert poly_factor(5, 100, 10, 0.0) == pytest.approx(0.5 * 0.95)
    assert poly_factor(10, 100, 10, 1e-6) == pytest.approx(0.9)
    assert poly_factor(100, 100, 10, 1e-6) == 0.0


def test_one_cycle_rises_to_the_peak_then_anneals_far_below_the_start():
    assert one_cycle_factor(0, 1000) == pytest.approx(1 / 25)
    assert one_cycle_factor(300, 1000) == pytest.approx(1.0)
    assert one_cycle_factor(1000, 1000) == pytest.approx(1 / 2500)
    assert one_cycle_factor(150, 1000) == pytest.approx((1 + 1 / 25) / 2)


def test_scheduler_keeps_each_groups_own_rate():
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.AdamW([{"params": params[:1], "lr": 1.0}, {"params": params[1:], "lr": 0.1}])
    scheduler = build_scheduler(optimizer, "poly", total=10, warmup=0)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.5, 0.05])
    with pytest.raises(ValueError, match="warmup"):
        build_scheduler(optimizer, "poly", total=10, warmup=11)


def test_sharded_batches_are_disjoint_deterministic_and_drop_the_remainder():
    shards = [epoch_batches(10, 2, seed=3, epoch=1, rank=r, world_size=2) for r in range(2)]
    assert shards[0] == epoch_batches(10, 2, seed=3, epoch=1, rank=0, world_size=2)
    flat = [i for shard in shards for batch in shard for i in batch]
    assert len(flat) == 8 and len(set(flat)) == 8  # two global batches of 4; 2 samples dropped
    assert epoch_batches(10, 2, seed=3, epoch=2) != epoch_batches(10, 2, seed=3, epoch=1)


def test_recipe_follows_the_paper_and_scales_with_the_crop():
    ade = get_recipe("ade20k-s")
    assert (ade.learning_rate, ade.iters, ade.batch_size, ade.schedule, ade.task_head_lr_mult) == (
        2e-4,
        40_000,
        16,
        "poly",
        0.1,
    )
    assert get_recipe("pascal-context-l").learning_rate == 1e-4
    nyu = get_recipe("nyu-b")
    assert (nyu.learning_rate, nyu.schedule, nyu.crop_size) == (3e-4, "one-cycle", (416, 544))
    small = ade.at_crop_size((224, 224))
    assert small.train_scale == (896, 224)
    assert (small.inference.crop_size, small.inference.stride, small.inference.test_scale) == (
        (224, 224),
        (149, 149),
        (896, 224),
    )


def test_train_config_is_validated_and_short_runs_shorten_warmup():
    config = DenseTrainConfig.from_preset("ade20k-s", "d", "o", iters=400)
    assert config.warmup_iters == 15  # 1500 of 40000, kept in proportion
    with pytest.raises(ValueError, match="batch_size"):
        DenseTrainConfig.from_preset("ade20k-s", "d", "o", batch_size=0)
    with pytest.raises(ValueError, match="unknown override"):
        DenseTrainConfig.from_preset("ade20k-s", "d", "o", split_overrides={"depth": 3})
    with pytest.raises(ValueError, match="no dense training recipe"):
        DenseTrainConfig.from_preset("llava", "d", "o")
