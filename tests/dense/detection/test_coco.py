"""Every kind of bad COCO input: a clear error naming file and annotation, or a counted, reported skip."""

import copy
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from llava_vitsplit.dense.detection import CocoDetectionDataset, CocoFormatError, CocoInstances
from llava_vitsplit.dense.detection.coco import find_split

from .conftest import SIZE, coco_split, write_coco_split


@pytest.fixture
def split(tmp_path):
    data, pixels = coco_split(3, seed=0)
    return tmp_path / "coco", data, pixels


def _load(root, data, pixels, split="train"):
    write_coco_split(root, split, data, pixels)
    return CocoInstances(*find_split(root, split))


def test_a_clean_split_loads_with_contiguous_labels(split):
    root, data, pixels = split
    write_coco_split(root, "train", data, pixels)
    dataset = CocoDetectionDataset(root, "train")
    image, target = dataset[0]
    assert image.shape == (3, SIZE, SIZE) and 0 <= image.min() and image.max() <= 1
    assert target["labels"].tolist() == [1, 2]  # category ids 3 and 7 -> labels 1 and 2
    assert target["masks"].shape == (2, SIZE, SIZE) and target["masks"].sum() > 0
    box = target["boxes"][0]
    ys, xs = np.nonzero(target["masks"][0].numpy())
    assert abs(box[0] - xs.min()) <= 1 and abs(box[3] - ys.max() - 1) <= 1  # the mask fills its box
    assert dataset.instances.report.to_dict() == {
        "skipped": {},
        "images_without_annotations": 0,
        "crowd_annotations": 0,
    }


def test_annotation_of_a_missing_image_names_file_and_annotation(split):
    root, data, pixels = split
    data["annotations"][2]["image_id"] = 999
    with pytest.raises(
        CocoFormatError, match=r"instances_train\.json: annotation id 20: image id 999 is not in the images"
    ):
        _load(root, data, pixels)


def test_image_file_missing_on_disk(split):
    root, data, pixels = split
    del pixels[data["images"][1]["file_name"]]
    with pytest.raises(CocoFormatError, match=r"image id 2: file .*img_0002\.png does not exist"):
        _load(root, data, pixels)


@pytest.mark.parametrize("size", [(0, 24), (24, -3)])
def test_boxes_of_zero_or_negative_size_are_counted_skips(split, size):
    root, data, pixels = split
    data["annotations"][0]["bbox"][2:] = list(size)
    instances = _load(root, data, pixels)
    assert instances.report.skipped["box of zero or negative size"] == [10]
    assert [a["id"] for a in instances.annotations[1]] == [11]
    assert "1 skipped (box of zero or negative size; ids [10])" in instances.report.summary()


def test_box_outside_its_image_is_a_counted_skip(split):
    root, data, pixels = split
    data["annotations"][0]["bbox"] = [SIZE + 5, 3, 10, 10]
    assert _load(root, data, pixels).report.skipped["box outside its image"] == [10]


def test_malformed_box_is_an_error(split):
    root, data, pixels = split
    data["annotations"][3]["bbox"] = [1, 2, 3]
    with pytest.raises(CocoFormatError, match=r"annotation id 21: bbox \[1, 2, 3\] is not"):
        _load(root, data, pixels)


def test_polygons_of_fewer_than_three_points(split):
    root, data, pixels = split
    good = data["annotations"][0]["segmentation"][0]
    data["annotations"][0]["segmentation"] = [[1, 1, 5, 5]]  # two points: the annotation has no shape
    data["annotations"][1]["segmentation"] = [[2, 2, 3, 3], good]  # one bad polygon beside a good one
    instances = _load(root, data, pixels)
    assert instances.report.skipped["no polygon of three or more points"] == [10]
    assert instances.report.skipped["polygon of fewer than three points dropped"] == [10, 11]
    assert [a["id"] for a in instances.annotations[1]] == [11]
    assert instances.annotations[1][0]["segmentation"] == [good]


def test_rle_of_the_wrong_size_is_an_error(split):
    root, data, pixels = split
    rle = mask_utils.encode(np.asfortranarray(np.ones((SIZE, SIZE + 1), dtype=np.uint8)))
    data["annotations"][4]["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    with pytest.raises(
        CocoFormatError, match=rf"annotation id 30: RLE size \[{SIZE}, {SIZE + 1}\] is not its image's size"
    ):
        _load(root, data, pixels)


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_of_the_right_size_decodes(split, compressed):
    root, data, pixels = split
    mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
    mask[5:20, 8:30] = 1
    if compressed:
        rle = mask_utils.encode(np.asfortranarray(mask))
        segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
    else:  # COCO's uncompressed form: run lengths in column-major order
        flat = mask.flatten(order="F")
        edges = np.flatnonzero(np.diff(np.r_[0, flat, 0]))
        runs = np.diff(np.r_[0, edges, flat.size]).tolist()
        segmentation = {
            "size": [SIZE, SIZE],
            "counts": [r for r in runs if r] if flat[0] == 0 else [0, *runs],
        }
    data["annotations"][0]["segmentation"] = segmentation
    assert (_load(root, data, pixels).instance_masks(1)[0] == mask).all()


def test_category_not_in_the_list_is_an_error(split):
    root, data, pixels = split
    data["annotations"][5]["category_id"] = 42
    with pytest.raises(
        CocoFormatError, match=r"annotation id 31: category id 42 is not in the category list \[3, 7\]"
    ):
        _load(root, data, pixels)


def test_empty_category_list_is_an_error(split):
    root, data, pixels = split
    data["categories"] = []
    with pytest.raises(CocoFormatError, match="category list is empty"):
        _load(root, data, pixels)


def test_duplicate_categories_and_missing_lists_are_errors(split):
    root, data, pixels = split
    bad = copy.deepcopy(data)
    bad["categories"].append({"id": 3, "name": "again"})
    with pytest.raises(CocoFormatError, match="distinct integers"):
        _load(root, bad, pixels)
    del data["annotations"]
    with pytest.raises(CocoFormatError, match=r"no \['annotations'\] list"):
        _load(root, data, pixels)


def test_image_without_annotations_is_allowed_and_counted(split):
    root, data, pixels = split
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != 2]
    write_coco_split(root, "train", data, pixels)
    dataset = CocoDetectionDataset(root, "train")
    assert dataset.instances.report.images_without_annotations == 1
    _, target = dataset[1]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, SIZE, SIZE)


def test_crowd_regions_are_kept_for_evaluation_only(split):
    root, data, pixels = split
    data["annotations"][0]["iscrowd"] = 1
    instances = _load(root, data, pixels)
    assert instances.report.crowd_annotations == 1
    assert [a["id"] for a in instances.annotations[1]] == [11]
    assert instances.coco.anns[10]["iscrowd"] == 1


def test_invalid_json_and_missing_folders(tmp_path, split):
    root, data, pixels = split
    path = write_coco_split(root, "train", data, pixels)
    path.write_text("{not json")
    with pytest.raises(CocoFormatError, match=r"instances_train\.json: invalid JSON"):
        CocoInstances(*find_split(root, "train"))
    with pytest.raises(FileNotFoundError, match="instances_val.json"):
        find_split(root, "val")
    (root / "annotations" / "instances_val.json").write_text(json.dumps(data))
    with pytest.raises(FileNotFoundError, match="no image folder for split 'val'"):
        find_split(root, "val")


def test_image_size_disagreeing_with_the_json_names_the_file(split):
    root, data, pixels = split
    data["images"][0]["height"] = SIZE + 2
    data["annotations"] = data["annotations"][2:]
    write_coco_split(root, "train", data, pixels)
    with pytest.raises(ValueError, match=r"img_0001\.png: image is \(64, 64\) px but .* says \(66, 64\)"):
        CocoDetectionDataset(root, "train")[0]
