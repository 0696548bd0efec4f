"""`llava-vitsplit dense train | eval | predict` and `params` for detection, end to end on tiny data."""

import json

import numpy as np
import pytest
from PIL import Image

from llava_vitsplit.cli import main
from llava_vitsplit.commands.params import count_trainable_parameters

from .conftest import TINY_SPLIT, tiny_dinov2_patch14, write_coco_folder

SPLIT_ARGS = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_SPLIT.items()]
OPTIONS = [
    "--task-option",
    "proposals=[64,32]",
    "--task-option",
    "rois_per_image=32",
    "--task-option",
    "neck_norm=group",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("detection_cli")
    tiny_dinov2_patch14().save_pretrained(root / "backbone")
    write_coco_folder(root / "coco", train=4, val=1)
    argv = ["dense", "train", "--preset", "coco-s", "--data-root", str(root / "coco"), "--backbone-path",
            str(root / "backbone"), "--output-dir", str(root / "run"), "--crop-size", "64", "96", "--iters", "2",
            "--batch-size", "2", "--warmup-iters", "1", "--num-workers", "0", "--scale-jitter", "80", *SPLIT_ARGS, *OPTIONS]  # fmt: skip
    assert main(argv) == 0
    return root


def test_train_eval_predict(trained, capsys):
    config = json.loads((trained / "run" / "final" / "dense_task.json").read_text())
    assert config["task"] == "detection" and config["options"]["category_ids"] == [3, 7]
    assert config["options"]["min_size"] == [64] and config["options"]["proposals"] == [64, 32]
    assert json.loads((trained / "run" / "train_config.json").read_text())["scale_jitter"] == 80
    out = trained / "eval.json"
    argv = ["dense", "eval", "--checkpoint", str(trained / "run" / "final"), "--data-root", str(trained / "coco"),
            "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "| bbox |" in capsys.readouterr().out
    metrics = json.loads(out.read_text())["metrics"]
    assert 0 <= metrics["bbox_AP"] <= 100 and 0 <= metrics["segm_AP50"] <= 100
    image = trained / "coco" / "val" / "img_0100.png"
    drawn = trained / "pred.png"
    argv = ["dense", "predict", str(image), "--out", str(drawn), "--checkpoint", str(trained / "run" / "final"),
            "--save-raw", str(trained / "raw")]  # fmt: skip
    assert main(argv) == 0
    panel = np.asarray(Image.open(drawn))
    assert panel.shape[1] > 2 * 64  # the input beside the drawn detections
    assert np.asarray(Image.open(trained / "raw" / "img_0100_detection.png")).shape == (64, 64)


def test_a_malformed_annotation_stops_training_with_its_id(trained, tmp_path):
    data = json.loads((trained / "coco" / "annotations" / "instances_train.json").read_text())
    data["annotations"][0]["category_id"] = 99
    bad = tmp_path / "bad"
    (bad / "annotations").mkdir(parents=True)
    (bad / "train").symlink_to(trained / "coco" / "train")
    (bad / "annotations" / "instances_train.json").write_text(json.dumps(data))
    argv = ["dense", "train", "--preset", "coco-s", "--data-root", str(bad), "--backbone-path",
            str(trained / "backbone"), "--output-dir", str(tmp_path / "run"), "--no-eval", *SPLIT_ARGS]  # fmt: skip
    with pytest.raises(ValueError, match="annotation id 10: category id 99 is not in the category list"):
        main(argv)


def test_params_reads_off_table_12s_head():
    counts = count_trainable_parameters("coco-s")
    assert counts["head"] == 17_548_277 and counts["total"] == 45_269_017
    assert list(counts) == ["task_head", "prior_head", "fusion", "neck", "fpn", "head", "total"]
