"""LLaVA JSON records: every bad input is a clear error, or with skipping, counted and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from llava_vitsplit.data.collator import LlavaDataCollator
from llava_vitsplit.data.conversation import get_template
from llava_vitsplit.data.issues import DataIssueLog, read_issues, summarize
from llava_vitsplit.data.llava_dataset import LazySupervisedDataset, RecordError
from llava_vitsplit.data.tokenize import IGNORE_INDEX

IMAGE_SEQ = 4


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32)).permute(2, 0, 1) / 255


def good(record_id: str, image: str | None = "red.png") -> dict:
    question = "<image>\nWhat colour is the circle?" if image else "What is 2 plus 3?"
    record = {"id": record_id, "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": "Red."}]}
    if image:
        record["image"] = image
    return record


@pytest.fixture
def folder(tmp_path):
    Image.new("RGB", (16, 16), (255, 0, 0)).save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    return tmp_path


def make_dataset(folder, records, tokenizer, template="v1", **kwargs):
    path = folder / "data.json"
    path.write_text(json.dumps(records))
    return LazySupervisedDataset(
        path,
        tokenizer,
        get_template(template),
        to_tensor,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=IMAGE_SEQ,
        image_folder=folder,
        progress=False,
        **kwargs,
    )


def test_items_hold_ids_labels_and_image(folder, sp_tokenizer):
    dataset = make_dataset(folder, [good("a"), good("t", image=None)], sp_tokenizer)
    item = dataset[0]
    assert item["pixel_values"].shape == (1, 3, 8, 8)
    assert item["input_ids"].shape == item["labels"].shape
    assert "pixel_values" not in dataset[1]
    assert dataset.modality_lengths[0] > 0 > dataset.modality_lengths[1]


BAD_AT_LOAD = [
    ({"id": "x"}, "has no 'conversations'"),
    ({"id": "x", "conversations": []}, "non-empty list"),
    ({"id": "x", "image": "red.png", "conversations": [{"from": "human", "value": "no token"}, {"from": "gpt", "value": "Red."}]}, "0 <image> tokens"),
    ({"id": "x", "conversations": [{"from": "human", "value": "<image>\nhi"}, {"from": "gpt", "value": "Red."}]}, "no 'image'"),
    ({"id": "x", "image": "missing.png", "conversations": good("x")["conversations"]}, "image file not found"),
    ({"id": "x", "conversations": [{"from": "gpt", "value": "Red."}]}, "expected 'user'"),
    ({"id": "x", "conversations": [{"from": "robot", "value": "Red."}]}, "unknown speaker"),
    ({"id": "x", "conversations": [{"from": "human", "value": "hi"}]}, "must end with the user"),
]


@pytest.mark.parametrize("bad,message", BAD_AT_LOAD)
def test_bad_record_is_an_error_naming_file_index_and_id(folder, sp_tokenizer, bad, message):
    with pytest.raises(RecordError, match=message) as raised:
        make_dataset(folder, [good("a"), bad], sp_tokenizer)
    text = str(raised.value)
    assert "data.json: record 1 (id 'x'" in text


def test_missing_image_error_names_the_file(folder, sp_tokenizer):
    bad = {"id": "m", "image": "missing.png", "conversations": good("m")["conversations"]}
    with pytest.raises(RecordError, match=r"image file .*missing\.png"):
        make_dataset(folder, [bad], sp_tokenizer)


def test_corrupt_image_fails_when_read_naming_record_and_file(folder, sp_tokenizer):
    dataset = make_dataset(folder, [good("a"), good("c", image="broken.png")], sp_tokenizer)
    with pytest.raises(RecordError, match=r"record 1 \(id 'c', image file .*broken\.png\): cannot read the image"):
        dataset[1]


def test_tokenization_mismatch_names_the_record(folder, merging_tokenizer):
    dataset = make_dataset(folder, [good("a")], merging_tokenizer)
    with pytest.raises(RecordError, match=r"record 0 \(id 'a'.*tokenization mismatch"):
        dataset[0]


def test_plain_template_rejects_text_only_records(folder, sp_tokenizer):
    with pytest.raises(RecordError, match="plain"):
        make_dataset(folder, [good("t", image=None)], sp_tokenizer, template="plain")


def test_skipping_counts_and_reports_every_bad_record(folder, sp_tokenizer):
    records = [
        good("ok0"),
        {"id": "noconv"},
        good("corrupt", image="broken.png"),
        good("ok1", image=None),
        {"id": "noimg", "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "x"}]},
    ]
    log = DataIssueLog(folder / "issues")
    dataset = make_dataset(folder, records, sp_tokenizer, skip_bad_records=True, issue_log=log)
    assert len(dataset) == 3  # two rejected at load
    items = [dataset[i] for i in range(len(dataset))]
    assert all(item["labels"].ne(IGNORE_INDEX).any() for item in items)
    # The corrupt record was replaced by the next good one.
    assert "pixel_values" not in items[1] and torch.equal(items[1]["input_ids"], items[2]["input_ids"])
    dataset[1]  # met again (another epoch): still reported once
    summary = summarize(read_issues(folder / "issues"))
    assert [(i.index, i.record_id) for i in summary.skipped] == [(1, "noconv"), (2, "corrupt"), (4, "noimg")]
    assert "3 record(s) skipped" in summary.format()


def test_truncation_is_counted(folder, sp_tokenizer):
    long = good("long")
    long["conversations"] += [{"from": "human", "value": "Where is the square? " * 20}, {"from": "gpt", "value": "Left."}]
    log = DataIssueLog()
    dataset = make_dataset(folder, [long], sp_tokenizer, model_max_length=60, issue_log=log)
    item = dataset[0]
    assert len(item["input_ids"]) == 60 and item["labels"].ne(IGNORE_INDEX).any()
    summary = summarize(log.issues())
    assert len(summary.truncated) == 1 and "truncated to model_max_length=60" in summary.truncated[0].reason


def two_images(record_id: str, images=("red.png", "blue.png")) -> dict:
    return {"id": record_id, "image": list(images), "conversations": [
        {"from": "human", "value": "<image>\n<image>\nWhich one is red?"}, {"from": "gpt", "value": "The first."},
        {"from": "human", "value": "And the other?"}, {"from": "gpt", "value": "Blue."}]}


@pytest.fixture
def two_colours(folder):
    Image.new("RGB", (16, 16), (0, 0, 255)).save(folder / "blue.png")
    return folder


def test_two_image_record_gives_both_images_in_placeholder_order(two_colours, sp_tokenizer):
    dataset = make_dataset(two_colours, [two_images("pair"), good("a")], sp_tokenizer)
    item = dataset[0]
    assert item["pixel_values"].shape == (2, 3, 8, 8)
    assert item["pixel_values"][0, 0].mean() == 1 and item["pixel_values"][1, 2].mean() == 1  # red, then blue
    image_id = sp_tokenizer.convert_tokens_to_ids("<image>")
    assert item["input_ids"].eq(image_id).sum() == 2 * IMAGE_SEQ
    assert dataset.modality_lengths[0] - dataset.modality_lengths[1] >= IMAGE_SEQ  # both images counted
    batch = LlavaDataCollator(pad_token_id=0)([dataset[0], dataset[1]])
    assert batch["pixel_values"].shape == (3, 3, 8, 8)  # the pair's two images, then the single one
    assert torch.equal(batch["pixel_values"][:2], item["pixel_values"])


@pytest.mark.parametrize("images,tokens,message", [
    (["red.png", "blue.png"], "<image>\nWhich one is red?", "has 2 image\\(s\\) but 1 <image> tokens"),
    (["red.png"], "<image>\n<image>\nWhich one is red?", "has 1 image\\(s\\) but 2 <image> tokens"),
    ([], "<image>\nWhich one?", "non-empty list"),
    (["red.png", 3], "<image>\n<image>\nWhich?", "relative file path or a non-empty list"),
    (["red.png", "gone.png"], "<image>\n<image>\nWhich?", "image file not found"),
])
def test_image_count_mismatch_names_the_record(two_colours, sp_tokenizer, images, tokens, message):
    bad = {"id": "pair-7", "image": images, "conversations": [
        {"from": "human", "value": tokens}, {"from": "gpt", "value": "The first."}]}
    with pytest.raises(RecordError, match=message) as raised:
        make_dataset(two_colours, [good("a"), bad], sp_tokenizer)
    assert "record 1 (id 'pair-7'" in str(raised.value) and str(two_colours / "data.json") in str(raised.value)


def test_collator_pads_and_stacks_images(folder, sp_tokenizer):
    dataset = make_dataset(folder, [good("a"), good("t", image=None)], sp_tokenizer)
    batch = LlavaDataCollator(pad_token_id=0)([dataset[0], dataset[1]])
    lengths = [len(dataset[0]["input_ids"]), len(dataset[1]["input_ids"])]
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["pixel_values"].shape == (1, 3, 8, 8)
    short = lengths.index(min(lengths))
    assert (batch["labels"][short, min(lengths) :] == IGNORE_INDEX).all()
    # Logits only where the next token is supervised, with those targets already shifted.
    keep, labels = batch["logits_to_keep"], batch["labels"]
    assert keep.shape == labels.shape and keep.sum() == (labels != IGNORE_INDEX).sum()
    assert torch.equal(batch["shift_labels"], labels[:, 1:][keep[:, :-1]])
