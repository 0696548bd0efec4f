"""Metrics against confusion matrices and depth errors worked out by hand."""

import math

import pytest
import torch

from llava_vitsplit.dense.metrics import (
    DepthMetrics,
    SegmentationMetrics,
    format_depth_table,
    format_segmentation_table,
)


def hand_worked_segmentation(num_classes=3):
    # labels:      0 0 1 1 2 ignore
    # predictions: 0 1 1 1 0 2
    # confusion (rows = labels): [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    metrics = SegmentationMetrics(num_classes, ignore_index=255)
    metrics.update(torch.tensor([[0, 1, 1], [1, 0, 2]]), torch.tensor([[0, 0, 1], [1, 2, 255]]))
    return metrics


def test_confusion_matrix_ignores_the_ignore_index():
    metrics = hand_worked_segmentation()
    assert metrics.state.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_iou_acc_and_their_means_match_the_hand_worked_values():
    result = hand_worked_segmentation().compute()
    ious = [row["IoU"] for row in result["per_class"]]
    accs = [row["Acc"] for row in result["per_class"]]
    # IoU = TP / (TP + FP + FN): 1/3, 2/3, 0/1; Acc = TP / labelled: 1/2, 2/2, 0/1.
    assert ious == pytest.approx([100 / 3, 200 / 3, 0.0])
    assert accs == pytest.approx([50.0, 100.0, 0.0])
    assert result["mIoU"] == result["mIoU_labelled"] == pytest.approx(100 / 3)  # every class labelled
    assert result["mAcc"] == pytest.approx(50.0)
    assert result["aAcc"] == pytest.approx(60.0)  # 3 of 5 labelled pixels


def test_a_class_absent_everywhere_is_nan_and_left_out_of_the_means():
    result = hand_worked_segmentation(num_classes=4).compute()
    assert math.isnan(result["per_class"][3]["IoU"]) and math.isnan(result["per_class"][3]["Acc"])
    assert result["mIoU"] == pytest.approx(100 / 3)


def test_a_class_only_predicted_scores_zero_iou_and_nan_accuracy():
    metrics = SegmentationMetrics(2)
    metrics.update(torch.tensor([0, 1]), torch.tensor([0, 0]))
    row = metrics.compute()["per_class"][1]
    assert row["IoU"] == 0.0 and math.isnan(row["Acc"])
    assert metrics.compute()["mIoU"] == pytest.approx(25.0)  # (1/2 + 0) / 2
    assert metrics.compute()["mIoU_labelled"] == pytest.approx(50.0)  # class 0 only: its IoU still pays


def test_states_of_two_shards_add_up_to_the_whole():
    whole = hand_worked_segmentation()
    first, second = SegmentationMetrics(3), SegmentationMetrics(3)
    first.update(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]))
    second.update(torch.tensor([1, 0, 2]), torch.tensor([1, 2, 255]))
    assert torch.equal(first.state + second.state, whole.state)


def test_out_of_range_ids_are_rejected():
    with pytest.raises(ValueError, match="label ids"):
        SegmentationMetrics(2).update(torch.tensor([0]), torch.tensor([5]))
    with pytest.raises(ValueError, match="predicted ids"):
        SegmentationMetrics(2).update(torch.tensor([7]), torch.tensor([0]))


def test_depth_metrics_match_the_hand_worked_values():
    metrics = DepthMetrics(min_depth=1e-3, max_depth=10.0)
    # valid pairs (prediction, truth): (1, 1), (1.5, 1), (4, 2); truth 0 and 12 m carry no ground truth.
    metrics.update(torch.tensor([1.0, 1.5, 4.0, 3.0, 3.0]), torch.tensor([1.0, 1.0, 2.0, 0.0, 12.0]))
    result = metrics.compute()
    ln2, ln15 = math.log(2), math.log(1.5)
    assert result["abs_rel"] == pytest.approx((0 + 0.5 + 1.0) / 3)
    assert result["sq_rel"] == pytest.approx((0 + 0.25 + 2.0) / 3)
    assert result["rmse"] == pytest.approx(math.sqrt((0 + 0.25 + 4) / 3))
    assert result["rmse_log"] == pytest.approx(math.sqrt((ln15**2 + ln2**2) / 3))
    assert result["log10"] == pytest.approx((math.log10(1.5) + math.log10(2)) / 3)
    # ratios 1, 1.5, 2 against 1.25, 1.5625, 1.953
    assert (result["delta1"], result["delta2"], result["delta3"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))
    assert result["images"] == 1


def test_depth_metrics_average_per_image_not_per_pixel():
    metrics = DepthMetrics()
    metrics.update(torch.tensor([2.0]), torch.tensor([1.0]))  # abs_rel 1
    metrics.update(torch.tensor([1.0, 1.0, 1.0]), torch.tensor([1.0, 1.0, 1.0]))  # abs_rel 0
    assert metrics.compute()["abs_rel"] == pytest.approx(0.5)


def test_depth_predictions_are_clamped_and_masks_narrow_the_valid_pixels():
    metrics = DepthMetrics(max_depth=10.0)
    prediction, truth = torch.tensor([50.0, 1.0]), torch.tensor([10.0, 2.0])
    metrics.update(prediction, truth, mask=torch.tensor([True, False]))
    assert metrics.compute()["abs_rel"] == pytest.approx(0.0)  # 50 clamps to 10; the 2nd pixel is masked


def test_an_image_without_ground_truth_is_not_counted():
    metrics = DepthMetrics()
    metrics.update(torch.ones(3), torch.zeros(3))
    assert metrics.compute()["images"] == 0 and math.isnan(metrics.compute()["abs_rel"])


def test_tables_name_every_class_and_metric():
    seg = format_segmentation_table(hand_worked_segmentation().compute())
    assert "mIoU  33.33" in seg and seg.count("\n") >= 4
    depth = DepthMetrics()
    depth.update(torch.tensor([1.0]), torch.tensor([1.0]))
    assert "abs_rel" in format_depth_table(depth.compute())
