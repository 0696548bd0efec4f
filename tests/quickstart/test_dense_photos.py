"""The sample writer: training crops come only from the training region, validation tiles only from the rest."""

import numpy as np

from llava_vitsplit.dense.datasets import load_dataset
from llava_vitsplit.quickstart.dense_photos import CROP_SIDE, _Photo, _to_millimetres, write_photo_samples


def test_training_crops_and_held_out_tiles_do_not_overlap(tmp_path):
    height, width, train_columns = 330, 500, 340
    # Each pixel's label is its column, so every written sample reveals where it was cut from.
    columns = np.tile(np.arange(width, dtype=np.uint16), (height, 1))
    photo = _Photo("synthetic", np.zeros((height, width, 3), dtype=np.uint8), columns, train_columns)
    write_photo_samples(tmp_path, photo, "depth", crops=6, seed=0)
    train = load_dataset("folder", tmp_path, "train", depth_scale=1.0, max_depth=1e6)
    val = load_dataset("folder", tmp_path, "val", depth_scale=1.0, max_depth=1e6)
    assert len(train) == 6 and len(val) == 2
    for index in range(len(train)):
        image, label = train.load(index)
        assert CROP_SIDE[0] <= image.shape[0] == image.shape[1] <= CROP_SIDE[1]
        assert label.max() < train_columns
    for index in range(len(val)):
        _, label = val.load(index)
        assert label[label > 0].min() >= train_columns and label.shape[1] == width - train_columns
    assert sum(val.load(i)[1].shape[0] for i in range(2)) == height


def test_depth_becomes_millimetres_with_invalid_pixels_zero():
    depth = np.array([[0.5, np.nan, np.inf, -1.0, 70.0]])
    assert _to_millimetres(depth).tolist() == [[500, 0, 0, 0, 65535]]
