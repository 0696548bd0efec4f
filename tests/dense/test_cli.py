"""`llava-vitsplit dense train | eval | predict` end to end on a tiny backbone folder."""

import json

import numpy as np
import pytest
from PIL import Image

from llava_vitsplit.cli import main

from .conftest import random_image, tiny_dinov2, write_depth_folder, write_png, write_segmentation_folder

TINY_ARGS = ["--num-task-layers", "1", "--num-prior-layers", "2", "--prior-start-layer", "1"]
RUN_ARGS = [
    "--crop-size",
    "32",
    "--iters",
    "2",
    "--batch-size",
    "4",
    "--num-workers",
    "0",
    "--save-interval",
    "2",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense_cli")
    tiny_dinov2().save_pretrained(root / "backbone")
    write_segmentation_folder(root / "seg_data")
    write_depth_folder(root / "depth_data")
    for preset, data, out in (("ade20k-s", "seg_data", "seg_run"), ("nyu-s", "depth_data", "depth_run")):
        argv = ["dense", "train", "--preset", preset, "--dataset", "folder", "--data-root", str(root / data)]
        argv += [
            "--backbone-path",
            str(root / "backbone"),
            "--output-dir",
            str(root / out),
            *RUN_ARGS,
            *TINY_ARGS,
        ]
        assert main(argv) == 0
    return root


def test_train_writes_a_part_that_remembers_its_backbone(trained):
    config = json.loads((trained / "seg_run" / "final" / "dense_task.json").read_text())
    assert config["backbone"] == str(trained / "backbone")
    assert config["split"]["num_task_layers"] == 1 and config["dataset"] == "folder"
    assert (trained / "depth_run" / "final" / "model.safetensors").is_file()


def test_eval_prints_the_class_table_and_writes_json(trained, capsys):
    out = trained / "seg_eval.json"
    argv = [
        "dense",
        "eval",
        "--checkpoint",
        str(trained / "seg_run" / "final"),
        "--data-root",
        str(trained / "seg_data"),
    ]
    assert main([*argv, "--output", str(out), "--flip", "--scales", "0.75", "1"]) == 0
    printed = capsys.readouterr().out
    assert "bright" in printed and "mIoU" in printed
    result = json.loads(out.read_text())
    assert result["inference"]["flip"] and result["inference"]["scales"] == [0.75, 1.0]
    assert {"aAcc", "mIoU", "mAcc", "per_class"} <= set(result["metrics"])


def test_eval_of_a_depth_checkpoint_reports_depth_metrics(trained, capsys):
    argv = ["dense", "eval", "--checkpoint", str(trained / "depth_run" / "checkpoints" / "checkpoint_2" / "part")]
    assert main([*argv, "--data-root", str(trained / "depth_data"), "--mode", "slide", "--window", "24"]) == 0
    assert "abs_rel" in capsys.readouterr().out


def test_eval_refuses_data_of_the_other_task(trained):
    argv = [
        "dense",
        "eval",
        "--checkpoint",
        str(trained / "seg_run" / "final"),
        "--data-root",
        str(trained / "depth_data"),
    ]
    with pytest.raises(ValueError, match="segmentation part"):
        main(argv)


def test_predict_runs_both_tasks_and_lays_them_beside_the_input(trained, capsys):
    image = trained / "photo.png"
    write_png(image, random_image(np.random.default_rng(1), 45, 60))
    out, raw = trained / "pred.png", trained / "raw"
    argv = ["dense", "predict", str(image), "--out", str(out), "--save-raw", str(raw)]
    argv += [
        "--checkpoint",
        str(trained / "seg_run" / "final"),
        "--checkpoint",
        f"depth={trained / 'depth_run' / 'final'}",
    ]
    assert main([*argv, "--tasks", "segmentation,depth"]) == 0
    assert "segmentation, depth from one trunk pass" in capsys.readouterr().out
    assert Image.open(out).size[0] >= 3 * 60  # input | seg | depth
    seg = np.asarray(Image.open(raw / "photo_segmentation.png"))
    depth = np.asarray(Image.open(raw / "photo_depth.png"))
    assert seg.shape == depth.shape == (45, 60) and seg.max() <= 1 and depth.min() >= 1  # >= min depth (1 mm)


def test_predict_names_an_unknown_task(trained):
    argv = [
        "dense",
        "predict",
        "x.png",
        "--out",
        "y.png",
        "--checkpoint",
        str(trained / "seg_run" / "final"),
        "--tasks",
        "normals",
    ]
    with pytest.raises(ValueError, match="normals"):
        main(argv)
