"""The detection sample writer: COCO-format, held-out objects only in val, partly visible ones by rule."""

import numpy as np

from llava_vitsplit.dense.detection import CocoDetectionDataset
from llava_vitsplit.quickstart.detection_photos import (
    MIN_PIXELS,
    TRAIN_COLUMNS,
    TRAIN_CROPS,
    write_voc_detection_sample,
)


def test_a_synthetic_photo_becomes_a_checked_coco_folder(tmp_path):
    height, width = 375, 500
    masks = np.zeros((3, height, width), dtype=bool)
    masks[0, 100:200, 50:150] = True  # left: training region only
    masks[1, 50:150, 380:480] = True  # right: held out
    masks[2, 10:14, TRAIN_COLUMNS - 2 : TRAIN_COLUMNS + 2] = True  # 8 px on the right of the cut: too few
    np.savez(tmp_path / "data.npz", rgb=np.zeros((height, width, 3), dtype=np.uint8), masks=masks,
             labels=np.array([15, 9, 9]))  # fmt: skip
    names = ["background", *[f"class{i}" for i in range(1, 21)]]
    (tmp_path / "names.txt").write_text("\n".join(names))
    root = write_voc_detection_sample(tmp_path / "data.npz", tmp_path / "names.txt", tmp_path / "coco")
    train, val = CocoDetectionDataset(root, "train"), CocoDetectionDataset(root, "val")
    assert len(train) == TRAIN_CROPS and len(val) == 1
    assert train.labels.category_ids == (9, 15) and train.labels.class_names == ("class9", "class15")
    (held_out,) = val.instances.annotations.values()
    assert [a["category_id"] for a in held_out] == [9]  # the object cut to 8 px (< MIN_PIXELS) is left out
    assert held_out[0]["bbox"] == [80.0, 50.0, 100.0, 100.0]  # in the held-out image's own columns
    assert 8 < MIN_PIXELS
    trained_on = {a["category_id"] for anns in train.instances.annotations.values() for a in anns}
    assert trained_on <= {15, 9} and 15 in trained_on
