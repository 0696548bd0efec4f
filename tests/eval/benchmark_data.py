"""Tiny POPE / VQAv2 / MMBench data in the formats users have: Hub snapshots (exported to the
parquet files our lmms-eval tasks read) and LLaVA's question files with image folders.

Images are solid-colour PNGs; each item names its colour.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
from PIL import Image

from llava_vitsplit.cli import main

POPE_SUFFIX = "\nAnswer the question using a single word or phrase."  # LLaVA's question files carry it


def png_bytes(color, size=(6, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_cell(color) -> dict:
    return {"bytes": png_bytes(color), "path": None}


def _write_hub_snapshot(
    root: Path, rows: dict, features: datasets.Features, shard: str, readme: str | None = None
):
    shard_path = root / shard
    shard_path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(shard_path))
    if readme:
        (root / "README.md").write_text(readme)
    return root


def pope_snapshot(root: Path, items: list[dict]) -> Path:
    """lmms-lab/POPE layout; items: {question, answer, category, color}."""
    string = datasets.Value("string")
    features = datasets.Features(
        {
            "id": string,
            "question_id": string,
            "question": string,
            "answer": string,
            "image_source": string,
            "image": datasets.Image(),
            "category": string,
        }
    )
    rows = {
        "id": [str(i) for i in range(len(items))],
        "question_id": [str(i + 1) for i in range(len(items))],
        "question": [item["question"] for item in items],
        "answer": [item["answer"] for item in items],
        "image_source": [f"COCO_{i}" for i in range(len(items))],
        "image": [_png_cell(item["color"]) for item in items],
        "category": [item["category"] for item in items],
    }
    return _write_hub_snapshot(root, rows, features, "data/test-00000-of-00001.parquet")


def vqav2_snapshot(root: Path, items: list[dict]) -> Path:
    """lmms-lab/VQAv2 layout; items: {question_id, question, humans (10 answers), answer_type, color}."""
    answer = {
        "answer": datasets.Value("string"),
        "answer_confidence": datasets.Value("string"),
        "answer_id": datasets.Value("int64"),
    }
    features = datasets.Features(
        {
            "question_type": datasets.Value("string"),
            "multiple_choice_answer": datasets.Value("string"),
            "answers": [answer],
            "image_id": datasets.Value("int64"),
            "answer_type": datasets.Value("string"),
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )
    rows = {
        "question_type": [item["question"].split()[0].lower() for item in items],
        "multiple_choice_answer": [max(set(item["humans"]), key=item["humans"].count) for item in items],
        "answers": [
            [
                {"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                for i, a in enumerate(item["humans"])
            ]
            for item in items
        ],
        "image_id": list(range(1, len(items) + 1)),
        "answer_type": [item["answer_type"] for item in items],
        "question_id": [item["question_id"] for item in items],
        "question": [item["question"] for item in items],
        "image": [_png_cell(item["color"]) for item in items],
    }
    return _write_hub_snapshot(root, rows, features, "data/validation-00000-of-00001.parquet")


MMBENCH_COLUMNS = ("index", "question", "hint", "answer", "A", "B", "C", "D", "category")


def mmbench_snapshot(root: Path, items: list[dict]) -> Path:
    """lmms-lab/MMBench (config en, split dev) layout; items: the MMBENCH_COLUMNS + color."""
    string = datasets.Value("string")
    features = datasets.Features(
        {
            **{name: string for name in MMBENCH_COLUMNS},
            "image": datasets.Image(),
            "source": string,
            "L2-category": string,
            "comment": string,
            "split": string,
        }
    )
    rows = {name: [item.get(name) for item in items] for name in MMBENCH_COLUMNS}
    rows["index"] = [str(index) for index in rows["index"]]  # the Hub's en config stores index as text
    rows.update(
        image=[_png_cell(item["color"]) for item in items],
        source=["s"] * len(items),
        comment=[None] * len(items),
        split=["dev"] * len(items),
    )
    rows["L2-category"] = ["perception"] * len(items)
    readme = "---\nconfigs:\n- config_name: en\n  data_files:\n  - split: dev\n    path: en/dev-*\n---\n"
    return _write_hub_snapshot(root, rows, features, "en/dev-00000-of-00001.parquet", readme)


SNAPSHOT_WRITERS = {"pope": pope_snapshot, "vqav2": vqav2_snapshot, "mmbench": mmbench_snapshot}


def export_benchmark(data_root: Path, hub_root: Path, benchmark: str, items: list[dict]) -> Path:
    """Write a Hub snapshot of one benchmark and export it with `eval export-data`."""
    source = SNAPSHOT_WRITERS[benchmark](hub_root / benchmark, items)
    argv = ["eval", "export-data", "--benchmark", benchmark, "--from", str(source), "--out", str(data_root)]
    assert main(argv) == 0
    return data_root


def export_benchmarks(data_root: Path, hub_root: Path, pope: list, vqav2: list, mmbench: list) -> Path:
    """The three benchmarks, exported to the files the eval/ task YAMLs read under `data_root`."""
    for benchmark, items in (("pope", pope), ("vqav2", vqav2), ("mmbench", mmbench)):
        export_benchmark(data_root, hub_root, benchmark, items)
    return data_root


def _jsonl(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def _save_images(folder: Path, names_colors) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, color in names_colors:
        (folder / name).write_bytes(png_bytes(color))


def llava_pope_files(folder: Path, items: list[dict]) -> Path:
    """LLaVA's POPE layout under `folder`: llava_pope_test.jsonl, val2014/ images, coco/ annotations.
    Question ids follow the Hub snapshot's (1-based position)."""
    names = [f"COCO_val2014_{i:012d}.png" for i in range(len(items))]
    _save_images(folder / "val2014", zip(names, (item["color"] for item in items)))
    _jsonl(
        folder / "llava_pope_test.jsonl",
        [
            {
                "question_id": i + 1,
                "image": name,
                "text": item["question"].strip() + POPE_SUFFIX,
                "category": item["category"],
            }
            for i, (name, item) in enumerate(zip(names, items))
        ],
    )
    for category in sorted({item["category"] for item in items}):
        _jsonl(
            folder / "coco" / f"coco_pope_{category}.json",
            [
                {
                    "question_id": i + 1,
                    "image": name,
                    "text": item["question"].strip(),
                    "label": item["answer"],
                }
                for i, (name, item) in enumerate(zip(names, items))
                if item["category"] == category
            ],
        )
    return folder


def llava_vqav2_files(folder: Path, items: list[dict], split: str) -> Path:
    """LLaVA's VQAv2 layout: <split>.jsonl questions (with the short-answer suffix) and test2015/."""
    names = [f"COCO_test2015_{item['question_id']:012d}.png" for item in items]
    _save_images(folder / "test2015", zip(names, (item["color"] for item in items)))
    _jsonl(
        folder / f"{split}.jsonl",
        [
            {
                "question_id": item["question_id"],
                "image": name,
                "text": item["question"] + POPE_SUFFIX,
                "category": "default",
            }
            for name, item in zip(names, items)
        ],
    )
    return folder


# The three benchmarks in miniature, used by the model-backed tests. Colours are the images.
POPE_ITEMS = [
    {
        "question": "Is there a red square in the image?",
        "answer": "yes",
        "category": "adversarial",
        "color": "red",
    },
    {"question": "Is there a dog in the image?", "answer": "no", "category": "adversarial", "color": "white"},
    {
        "question": "Is there a blue square in the image?",
        "answer": "yes",
        "category": "popular",
        "color": "blue",
    },
    {"question": "Is there a cat in the image?", "answer": "no", "category": "popular", "color": "gray"},
    {
        "question": "Is there a green square in the image?",
        "answer": "yes",
        "category": "random",
        "color": "green",
    },
    {"question": "Is there a cow in the image?", "answer": "no", "category": "random", "color": "black"},
]
VQAV2_ITEMS = [
    {
        "question_id": 1001,
        "question": "How many dogs are there?",
        "humans": ["two", "2", "2"] + ["3"] * 7,
        "answer_type": "number",
        "color": "red",
    },
    {
        "question_id": 1002,
        "question": "What colour is it?",
        "humans": ["red"] * 8 + ["blue"] * 2,
        "answer_type": "other",
        "color": "red",
    },
    {
        "question_id": 1003,
        "question": "Is there a cat?",
        "humans": ["yes"] * 9 + ["no"],
        "answer_type": "yes/no",
        "color": "blue",
    },
]
MMBENCH_ITEMS = [
    {"index": 0, "question": "Which animal is shown?", "hint": None, "answer": "B", "A": "dog", "B": "cat", "C": "cow", "D": "pig", "category": "animals", "color": "red"},
    {"index": 1, "question": "What colour is it?", "hint": "Look at the centre.", "answer": "A", "A": "red", "B": "blue", "C": None, "D": None, "category": "colours", "color": "blue"},
    {"index": 2, "question": "Which animal?", "hint": "nan", "answer": "C", "A": "dog", "B": "cat", "C": "cow", "D": "pig", "category": "animals", "color": "green"},
]  # fmt: skip
