"""Every dataset layout on tiny folders written here, with its label convention."""

import numpy as np
import pytest
import torch

from llava_vitsplit.dense.datasets import load_dataset
from llava_vitsplit.dense.datasets.labels import DepthLabels, SegmentationLabels
from llava_vitsplit.dense.transforms import DepthTrainTransform, SegmentationTrainTransform

from .conftest import random_image, write_depth_folder, write_png, write_segmentation_folder

RNG = np.random.default_rng(0)
RAW = np.array([[0, 1, 2], [150, 3, 0]], dtype=np.uint8)


def write_ade20k(root, raw=RAW):
    base = root / "ADEChallengeData2016"
    for split in ("training", "validation"):
        write_png(base / "images" / split / "ADE_x_00000001.jpg", random_image(RNG, *raw.shape))
        write_png(base / "annotations" / split / "ADE_x_00000001.png", raw)
    return base


def test_ade20k_reduces_zero_label(tmp_path):
    write_ade20k(tmp_path)
    dataset = load_dataset("ade20k", tmp_path, "train")
    assert dataset.labels.num_classes == 150 and dataset.task == "segmentation"
    labels = dataset[0]["labels"]
    assert labels.tolist() == [[255, 0, 1], [149, 2, 255]]
    assert dataset[0]["pixel_values"].shape == (3, 2, 3)


def test_ade20k_accepts_its_own_folder_and_names_a_missing_annotation(tmp_path):
    base = write_ade20k(tmp_path)
    assert len(load_dataset("ade20k", base, "val")) == 1
    write_png(base / "images" / "validation" / "ADE_x_00000002.jpg", random_image(RNG, 2, 3))
    with pytest.raises(FileNotFoundError, match="ADE_x_00000002.png"):
        load_dataset("ade20k", base, "val")


def test_ade20k_rejects_a_label_beyond_150(tmp_path):
    write_ade20k(tmp_path, raw=np.array([[151, 1]], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\[151\]"):
        load_dataset("ade20k", tmp_path, "train")[0]


def write_cityscapes(root, kind, raw):
    name = "aachen_000000_000019"
    write_png(
        root / "leftImg8bit" / "train" / "aachen" / f"{name}_leftImg8bit.png", random_image(RNG, *raw.shape)
    )
    write_png(root / "gtFine" / "train" / "aachen" / f"{name}_gtFine_{kind}.png", raw)


def test_cityscapes_reads_train_id_masks(tmp_path):
    write_cityscapes(tmp_path, "labelTrainIds", np.array([[0, 18, 255]], dtype=np.uint8))
    dataset = load_dataset("cityscapes", tmp_path, "train")
    assert dataset.labels.num_classes == 19
    assert dataset[0]["labels"].tolist() == [[0, 18, 255]]


def test_cityscapes_maps_raw_label_ids_to_the_19_train_ids(tmp_path):
    # 7 road -> 0, 26 car -> 13, 33 bicycle -> 18, 0 unlabelled and 4 static -> ignored
    write_cityscapes(tmp_path, "labelIds", np.array([[7, 26, 33, 0, 4]], dtype=np.uint8))
    assert load_dataset("cityscapes", tmp_path, "train")[0]["labels"].tolist() == [[0, 13, 18, 255, 255]]


def test_pascal_context_uses_the_split_file_and_59_classes(tmp_path):
    base = tmp_path / "VOCdevkit" / "VOC2010"
    (base / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (base / "ImageSets" / "SegmentationContext" / "val.txt").write_text("2008_000002\n")
    write_png(base / "JPEGImages" / "2008_000002.jpg", random_image(RNG, 1, 3))
    write_png(base / "SegmentationClassContext" / "2008_000002.png", np.array([[0, 1, 59]], dtype=np.uint8))
    dataset = load_dataset("pascal-context", tmp_path, "val")
    assert dataset.labels.num_classes == 59
    assert dataset[0]["labels"].tolist() == [[255, 0, 58]]
    (base / "ImageSets" / "SegmentationContext" / "val.txt").write_text("2008_000002\n2008_000003\n")
    with pytest.raises(FileNotFoundError, match="2008_000003"):
        load_dataset("pascal-context", tmp_path, "val")


def write_nyu(root, depth_mm):
    write_png(root / "kitchen_0028b" / "rgb_00045.jpg", random_image(RNG, *depth_mm.shape))
    write_png(root / "kitchen_0028b" / "sync_depth_00045.png", depth_mm)
    (root / "nyu_train.txt").write_text(
        "/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579\n"
    )
    (root / "nyu_test.txt").write_text(
        "kitchen_0028b/rgb_00045.jpg kitchen_0028b/sync_depth_00045.png 518.8579\n"
    )


def test_nyu_reads_millimetres_caps_at_10_m_and_evaluates_the_eigen_crop(tmp_path):
    depth = np.full((480, 640), 2500, dtype=np.uint16)
    depth[0, 0], depth[0, 1] = 12000, 0
    write_nyu(tmp_path, depth)
    for split in ("train", "val"):
        dataset = load_dataset("nyu", tmp_path, split)
        labels = dataset[0]["labels"]
        assert labels.dtype == torch.float32
        assert labels[0, 0] == 0 and labels[0, 1] == 0 and labels[1, 1] == pytest.approx(2.5)
    mask = dataset.labels.eval_mask((480, 640))
    assert mask.sum() == (471 - 45) * (601 - 41) and mask[45, 41] and not mask[44, 41]


def test_nyu_names_the_line_of_a_missing_file(tmp_path):
    write_nyu(tmp_path, np.ones((4, 4), dtype=np.uint16))
    (tmp_path / "nyu_train.txt").write_text("a.jpg a.png\n\nb.jpg\n")
    with pytest.raises(FileNotFoundError, match=r"nyu_train.txt:1"):
        load_dataset("nyu", tmp_path, "train")
    (tmp_path / "nyu_train.txt").write_text("kitchen_0028b/rgb_00045.jpg\n")
    with pytest.raises(ValueError, match=r"nyu_train.txt:1: expected"):
        load_dataset("nyu", tmp_path, "train")


def test_folder_segmentation_with_classes_file(tmp_path):
    write_segmentation_folder(tmp_path, counts=(("train", 3), ("val", 1)))
    dataset = load_dataset("folder", tmp_path, "train")
    assert len(dataset) == 3 and dataset.labels.class_names == ("dark", "bright")
    assert set(dataset[0]["labels"].unique().tolist()) == {0, 1}


def test_folder_segmentation_needs_a_class_count_and_checks_it(tmp_path):
    write_segmentation_folder(tmp_path, counts=(("train", 1),))
    (tmp_path / "classes.txt").unlink()
    with pytest.raises(ValueError, match="num_classes"):
        load_dataset("folder", tmp_path, "train")
    assert load_dataset("folder", tmp_path, "train", num_classes=2).labels.class_names == (
        "class 0",
        "class 1",
    )
    with pytest.raises(ValueError, match=r"raw label value\(s\) \[1\]"):
        load_dataset("folder", tmp_path, "train", num_classes=1)[0]


def test_folder_depth_with_a_custom_scale(tmp_path):
    write_depth_folder(tmp_path, counts=(("train", 2),))
    dataset = load_dataset("folder", tmp_path, "train", depth_scale=500.0, max_depth=6.0)
    labels = dataset[0]["labels"]
    assert dataset.task == "depth"
    assert (
        labels.max() == pytest.approx(6.0, abs=0.1) and (labels == 0).any()
    )  # 1..4 m stored x1000, read /500


def test_folder_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither"):
        load_dataset("folder", tmp_path, "train")
    write_segmentation_folder(tmp_path, counts=(("train", 1),))
    (tmp_path / "depth").mkdir()
    with pytest.raises(FileNotFoundError, match="exactly one"):
        load_dataset("folder", tmp_path, "train")
    (tmp_path / "depth").rmdir()
    with pytest.raises(FileNotFoundError, match="image folder"):
        load_dataset("folder", tmp_path, "val")
    write_png(tmp_path / "images" / "train" / "extra.png", random_image(RNG, 4, 4))
    with pytest.raises(FileNotFoundError, match="extra.png has no label"):
        load_dataset("folder", tmp_path, "train")


def test_public_layouts_refuse_folder_options_and_unknown_names(tmp_path):
    write_ade20k(tmp_path)
    with pytest.raises(ValueError, match="folder datasets"):
        load_dataset("ade20k", tmp_path, "train", num_classes=3)
    with pytest.raises(ValueError, match="unknown dataset layout"):
        load_dataset("kitti", tmp_path, "train")
    with pytest.raises(ValueError, match="no split"):
        load_dataset("ade20k", tmp_path, "test")


def test_mask_size_must_match_its_image(tmp_path):
    write_segmentation_folder(tmp_path, counts=(("train", 1),))
    write_png(tmp_path / "masks" / "train" / "000.png", np.zeros((5, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="differs from its image"):
        load_dataset("folder", tmp_path, "train")[0]


def test_label_conventions_are_validated():
    with pytest.raises(ValueError, match="ignore_index"):
        SegmentationLabels(("a", "b"), ignore_index=1)
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        DepthLabels(min_depth=5, max_depth=1)
    with pytest.raises(ValueError, match="one channel"):
        SegmentationLabels(("a",)).decode(np.zeros((2, 2, 3), dtype=np.uint8), "x.png")


def test_segmentation_augmentation_is_reproducible_per_epoch_and_pads_with_ignore(tmp_path):
    write_segmentation_folder(tmp_path, counts=(("train", 2),), size=(20, 30))
    dataset = load_dataset(
        "folder", tmp_path, "train", transform=SegmentationTrainTransform((24, 24), scale=(60, 20))
    )
    first, again = dataset[0], dataset[0]
    assert first["pixel_values"].shape == (3, 24, 24) and first["labels"].shape == (24, 24)
    assert torch.equal(first["pixel_values"], again["pixel_values"])
    assert set(first["labels"].unique().tolist()) <= {0, 1, 255}
    draws = []
    for epoch in range(4):
        dataset.set_epoch(epoch)
        draws.append(dataset[0]["pixel_values"])
    assert any(not torch.equal(draws[0], other) for other in draws[1:])


def test_depth_augmentation_keeps_depth_values_and_pads_with_no_ground_truth(tmp_path):
    write_depth_folder(tmp_path, counts=(("train", 1),), size=(20, 30))
    dataset = load_dataset("folder", tmp_path, "train", transform=DepthTrainTransform((24, 32)))
    sample = dataset[0]
    labels = sample["labels"]
    assert sample["pixel_values"].shape == (3, 24, 32) and labels.shape == (24, 32)
    assert (labels[20:] == 0).all() and (labels[:, 30:] == 0).all()  # padding
    # nearest-neighbour rotation and cropping move depths around but never blend them
    stored = set((np.linspace(1.0, 4.0, 20, dtype=np.float32) * 1000).astype(np.uint16).tolist()) | {0}
    assert set((labels * 1000).round().int().unique().tolist()) <= stored
