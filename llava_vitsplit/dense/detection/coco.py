"""COCO-format instance annotations: read, check record by record, and say what was left out.

A folder holds ``annotations/instances_SPLIT.json`` and the images it names under ``SPLIT/`` or
``images/SPLIT/`` (COCO 2017's own layout is ``--train-split train2017 --val-split val2017``).

Every record is checked before training, so nothing malformed reaches the loss:

* errors (the file and the annotation id are named): invalid JSON, no or duplicate categories, an
  annotation whose image is not listed, an image file that does not exist, a category id not in
  the list, a malformed box, an RLE whose size is not its image's size;
* counted, reported skips (degenerate data COCO itself contains): boxes of zero or negative size or
  outside the image, polygons of fewer than three points (an annotation whose polygons are all such
  is skipped), crowd regions (kept for evaluation, left out of training);
* images without annotations are allowed (they train the background) and counted.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

IMAGE_FOLDERS = ("{split}", "images/{split}")


class CocoFormatError(ValueError):
    """A COCO annotation file that cannot be used as it is; the message names the file and record."""


@dataclass
class CocoLoadReport:
    """What was left out of a split, and why (annotation ids per reason)."""

    skipped: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    images_without_annotations: int = 0
    crowd_annotations: int = 0

    def summary(self) -> str:
        parts = [
            f"{len(ids)} skipped ({reason}; ids {ids[:5]}{' ...' if len(ids) > 5 else ''})"
            for reason, ids in self.skipped.items()
        ]
        parts.append(f"{self.images_without_annotations} image(s) without annotations")
        parts.append(f"{self.crowd_annotations} crowd annotation(s) kept for evaluation only")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "skipped": {reason: len(ids) for reason, ids in self.skipped.items()},
            "images_without_annotations": self.images_without_annotations,
            "crowd_annotations": self.crowd_annotations,
        }


def find_split(root: str | Path, split: str) -> tuple[Path, Path]:
    """``(instances JSON, image folder)`` of a split in a COCO-format folder."""
    root = Path(root)
    found = [n for n in (split, f"{split}2017") if (root / "annotations" / f"instances_{n}.json").is_file()]
    if not found:  # COCO 2017 itself: train -> train2017
        raise FileNotFoundError(
            f"{root}: no annotations/instances_{split}.json (COCO-format folder expected)"
        )
    split = found[0]
    annotation_file = root / "annotations" / f"instances_{split}.json"
    for pattern in IMAGE_FOLDERS:
        folder = root / pattern.format(split=split)
        if folder.is_dir():
            return annotation_file, folder
    tried = ", ".join(pattern.format(split=split) for pattern in IMAGE_FOLDERS)
    raise FileNotFoundError(f"{root}: no image folder for split {split!r} (tried {tried})")


class CocoInstances:
    """A checked COCO instances file: images, categories, the annotations fit to train on, and a
    pycocotools ``COCO`` index of the same records for evaluation."""

    def __init__(self, annotation_file: str | Path, image_dir: str | Path) -> None:
        self.annotation_file = Path(annotation_file)
        self.image_dir = Path(image_dir)
        self.report = CocoLoadReport()
        data = self._read()
        self.categories = self._categories(data)
        self.images = self._images(data)
        self.annotations = self._annotations(data)
        self.coco = self._index(data)

    # ------------------------------------------------------------------ reading and checks

    def _error(self, message: str) -> CocoFormatError:
        return CocoFormatError(f"{self.annotation_file}: {message}")

    def _read(self) -> dict:
        try:
            data = json.loads(self.annotation_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise self._error(f"invalid JSON ({error})") from error
        missing = [
            key for key in ("images", "annotations", "categories") if not isinstance(data.get(key), list)
        ]
        if missing:
            raise self._error(
                f"no {missing} list(s); a COCO instances file has images, annotations, categories"
            )
        return data

    def _categories(self, data: dict) -> list[dict]:
        categories = sorted(data["categories"], key=lambda c: c.get("id", -1))
        if not categories:
            raise self._error("the category list is empty: there is nothing to detect")
        ids = [c.get("id") for c in categories]
        if any(not isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
            raise self._error(f"category ids must be distinct integers, got {ids}")
        return categories

    def _images(self, data: dict) -> dict[int, dict]:
        images = {}
        for image in data["images"]:
            image_id = image.get("id")
            if image_id in images:
                raise self._error(f"image id {image_id} is listed twice")
            if not (self.image_dir / str(image.get("file_name", ""))).is_file():
                raise self._error(
                    f"image id {image_id}: file {self.image_dir / str(image.get('file_name'))} does not exist"
                )
            if not (isinstance(image.get("height"), int) and isinstance(image.get("width"), int)):
                raise self._error(f"image id {image_id}: needs integer height and width")
            images[image_id] = image
        return images

    def _annotations(self, data: dict) -> dict[int, list[dict]]:
        category_ids = {c["id"] for c in self.categories}
        by_image: dict[int, list[dict]] = {image_id: [] for image_id in self.images}
        for annotation in data["annotations"]:
            checked = self._check_annotation(annotation, category_ids)
            if checked is not None:
                by_image[annotation["image_id"]].append(checked)
        self.report.images_without_annotations = sum(1 for anns in by_image.values() if not anns)
        return by_image

    def _check_annotation(self, annotation: dict, category_ids: set[int]) -> dict | None:
        ann_id = annotation.get("id")
        where = f"annotation id {ann_id}"
        if annotation.get("image_id") not in self.images:
            raise self._error(f"{where}: image id {annotation.get('image_id')} is not in the images list")
        if annotation.get("category_id") not in category_ids:
            raise self._error(
                f"{where}: category id {annotation.get('category_id')} is not in the category list {sorted(category_ids)}"
            )
        bbox = annotation.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise self._error(f"{where}: bbox {bbox!r} is not [x, y, width, height]")
        image = self.images[annotation["image_id"]]
        segmentation = self._check_segmentation(annotation, image, where)
        if annotation.get("iscrowd", 0):
            self.report.crowd_annotations += 1
            return None
        if bbox[2] <= 0 or bbox[3] <= 0:
            return self._skip("box of zero or negative size", ann_id)
        x0, y0 = max(bbox[0], 0), max(bbox[1], 0)
        x1, y1 = min(bbox[0] + bbox[2], image["width"]), min(bbox[1] + bbox[3], image["height"])
        if x1 <= x0 or y1 <= y0:
            return self._skip("box outside its image", ann_id)
        if segmentation is None:
            return self._skip("no polygon of three or more points", ann_id)
        return {**annotation, "bbox_xyxy": [x0, y0, x1, y1], "segmentation": segmentation}

    def _check_segmentation(self, annotation: dict, image: dict, where: str):
        """The annotation's segmentation with short polygons dropped (``None`` if none is left)."""
        segmentation = annotation.get("segmentation")
        if isinstance(segmentation, dict):  # RLE, compressed or not
            size = segmentation.get("size")
            if list(size or []) != [image["height"], image["width"]]:
                raise self._error(
                    f"{where}: RLE size {size} is not its image's size [{image['height']}, {image['width']}]"
                )
            return segmentation
        if not isinstance(segmentation, list):
            raise self._error(f"{where}: segmentation must be a list of polygons or an RLE dict")
        polygons = [p for p in segmentation if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0]
        if len(polygons) < len(segmentation):
            self.report.skipped["polygon of fewer than three points dropped"].append(annotation.get("id"))
        return polygons or None

    def _skip(self, reason: str, ann_id: int) -> None:
        self.report.skipped[reason].append(ann_id)
        return None

    def _index(self, data: dict) -> COCO:
        """pycocotools' index over the checked images (all annotations but the malformed ones, so
        crowd regions are ignored in matching as COCO intends)."""
        kept = {a["id"] for anns in self.annotations.values() for a in anns}
        evaluated = [
            {**a, "area": a.get("area", a["bbox"][2] * a["bbox"][3])}
            for a in data["annotations"]
            if a.get("id") in kept or a.get("iscrowd", 0)
        ]
        coco = COCO()
        coco.dataset = {
            "images": list(self.images.values()),
            "annotations": evaluated,
            "categories": self.categories,
        }
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco

    # ------------------------------------------------------------------ views

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(str(c.get("name", c["id"])) for c in self.categories)

    @property
    def category_ids(self) -> tuple[int, ...]:
        return tuple(c["id"] for c in self.categories)

    @property
    def image_ids(self) -> list[int]:
        return sorted(self.images)

    def counts(self) -> Counter:
        return Counter(a["category_id"] for anns in self.annotations.values() for a in anns)

    def instance_masks(self, image_id: int) -> np.ndarray:
        """``(N, H, W)`` uint8 masks of the image's training annotations."""
        image = self.images[image_id]
        height, width = image["height"], image["width"]
        masks = [_decode(a["segmentation"], height, width) for a in self.annotations[image_id]]
        return np.stack(masks) if masks else np.zeros((0, height, width), dtype=np.uint8)


def _decode(segmentation, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.uint8)
