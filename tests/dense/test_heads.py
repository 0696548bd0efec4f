import pytest
import torch

from llava_vitsplit.dense.heads import DepthHead, SegmentationHead
from llava_vitsplit.dense.task import DenseTaskConfig
from llava_vitsplit.split import ViTSplitConfig


def test_segmentation_head_upsamples_the_grid_four_times():
    logits = SegmentationHead(64, 5)(torch.randn(2, 64, 3, 4))
    assert logits.shape == (2, 5, 12, 16)


def test_depth_head_upsamples_four_times_and_never_goes_below_min_depth():
    head = DepthHead(64, min_depth=0.25)
    depth = head(torch.randn(2, 64, 3, 4) * 10)
    assert depth.shape == (2, 1, 12, 16)
    assert depth.min() >= 0.25


def test_depth_head_narrows_to_half_width_then_64_channels():
    head = DepthHead(128)
    channels = [m.out_channels for m in head.upsample if isinstance(m, torch.nn.ConvTranspose2d)]
    assert channels == [64, 64]


_SPLIT = ViTSplitConfig(
    num_layers=4, hidden_size=64, num_task_layers=1, num_prior_layers=2, prior_start_layer=1
)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: SegmentationHead(48, 3), "divisible by 32"),
        (lambda: SegmentationHead(64, 0), "num_classes"),
        (lambda: DepthHead(32), "in_channels / 2"),
        (lambda: DepthHead(64, min_depth=-1), "min_depth"),
        (lambda: DenseTaskConfig.from_split_config("segmentation", _SPLIT), "class_names"),
        (lambda: DenseTaskConfig.from_split_config("no-such-task", _SPLIT), "unknown dense task"),
    ],
)
def test_bad_head_settings_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()
