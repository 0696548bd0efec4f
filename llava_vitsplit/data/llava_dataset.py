"""LLaVA's JSON training data, read lazily: one record becomes input ids, labels and image tensors.

A JSON list of `{"id", "image": "relative/path", "conversations": [{"from": "human", "value":
"<image>\\n..."}, {"from": "gpt", "value": "..."}, ...]}`; text-only records have no `image`.
A record with several images gives `"image"` as a list of paths, one per `<image>` in its user
turns, in the order the placeholders appear (LLaVA-NeXT's interleaved format).

Every record's structure is checked when the dataset is built (cheap: no image is decoded, nothing
is tokenised), so most bad input fails before training starts. Decoding the image and tokenising
happen per item; their failures surface then. Each failure names the file, the record's index and
id, and the image. With `skip_bad_records` such a record is logged (and reported at the end of the
run) and the next good record is used in its place, so batches keep their size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm import tqdm

from llava_vitsplit.constants import IMAGE_TOKEN

from .conversation import ASSISTANT, USER, ConversationTemplate, Turn, to_turns
from .issues import SKIPPED, TRUNCATED, DataIssue, DataIssueLog
from .tokenize import tokenize_conversation


class RecordError(ValueError):
    """A training record that cannot be used; the message names the file, the record and the image."""

    def __init__(self, data_path: str, index: int, record_id: str, reason: str, image: str | None = None):
        self.data_path, self.index, self.record_id, self.reason, self.image = data_path, index, record_id, reason, image
        image_part = f", image file {image}" if image else ""
        super().__init__(f"{data_path}: record {index} (id {record_id!r}{image_part}): {reason}")


@dataclass(frozen=True)
class CheckedRecord:
    index: int
    record_id: str
    turns: tuple[Turn, ...]
    image_paths: tuple[Path, ...]  # in the order of the <image> placeholders
    approx_length: int  # words + image tokens: LLaVA's cheap length estimate for grouping


def load_records(data_path: str | Path) -> list:
    path = Path(data_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"--data_path {path} does not exist") from None
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--data_path {path} is not valid JSON: {error}") from None
    if not isinstance(records, list):
        raise ValueError(f"--data_path {path}: expected a JSON list of records, got {type(records).__name__}")
    return records


def check_record(
    record, index: int, data_path: str, image_folder: Path | None, template: ConversationTemplate, eos_token: str,
    image_seq_length: int,
) -> CheckedRecord:
    """Validate one record's structure (no image decoding); raise `RecordError` on any problem."""
    record_id = str(record.get("id", f"<no id, index {index}>")) if isinstance(record, dict) else f"<index {index}>"

    def fail(reason: str, image: str | None = None):
        raise RecordError(data_path, index, record_id, reason, image)

    if not isinstance(record, dict):
        fail(f"expected a JSON object, got {type(record).__name__}")
    conversations = record.get("conversations")
    if conversations is None:
        fail("has no 'conversations'")
    if not isinstance(conversations, list) or not conversations:
        fail("'conversations' must be a non-empty list of turns")
    try:
        turns = to_turns(conversations)
        template.segments(turns, eos_token)  # alternation, ends with a reply, template-specific rules
    except ValueError as error:
        fail(str(error))
    if any(turn.role == ASSISTANT and IMAGE_TOKEN in turn.text for turn in turns):
        fail(f"an assistant reply contains {IMAGE_TOKEN}")
    num_image_tokens = sum(turn.text.count(IMAGE_TOKEN) for turn in turns if turn.role == USER)

    image = record.get("image")
    images = [] if image is None else [image] if isinstance(image, str) else image
    if image is None:
        if num_image_tokens:
            fail(f"has {num_image_tokens} {IMAGE_TOKEN} token(s) but no 'image'")
    elif not isinstance(images, list) or not images or not all(isinstance(name, str) and name for name in images):
        fail(f"'image' must be a relative file path or a non-empty list of them, got {image!r}")
    elif num_image_tokens != len(images):
        fail(f"has {len(images)} image(s) but {num_image_tokens} {IMAGE_TOKEN} tokens in its turns "
             "(expected one per image)", ", ".join(images))
    if images and image_folder is None:
        fail("has an image but no --image_folder was given", ", ".join(images))
    image_paths = tuple(image_folder / name for name in images) if images else ()
    for path in image_paths:
        if not path.is_file():
            fail("image file not found", str(path))
    words = sum(len(turn.text.split()) for turn in turns)
    return CheckedRecord(
        index, record_id, tuple(turns), image_paths, words + image_seq_length * len(image_paths)
    )


class LazySupervisedDataset(Dataset):
    """LLaVA-format records -> `{"input_ids", "labels", "pixel_values"?}` tensors, one record at a time.

    `process_image` maps a PIL RGB image to a `(3, H, W)` tensor (the processor's `process_images`
    with the run's `image_aspect_ratio`); `pixel_values` is `(num_images, 3, H, W)`.
    """

    def __init__(
        self,
        data_path: str | Path,
        tokenizer,
        template: ConversationTemplate,
        process_image: Callable[[Image.Image], torch.Tensor],
        *,
        image_token_id: int,
        image_seq_length: int,
        image_folder: str | Path | None = None,
        model_max_length: int | None = None,
        skip_bad_records: bool = False,
        issue_log: DataIssueLog | None = None,
        progress: bool = True,
    ) -> None:
        self.data_path = str(data_path)
        self.tokenizer = tokenizer
        self.template = template
        self.process_image = process_image
        self.image_token_id = image_token_id
        self.image_seq_length = image_seq_length
        self.model_max_length = model_max_length
        self.skip_bad_records = skip_bad_records
        self.issue_log = issue_log if issue_log is not None else DataIssueLog()
        if tokenizer.eos_token is None:
            raise ValueError(f"the tokenizer {type(tokenizer).__name__} has no EOS token to end replies with")
        folder = Path(image_folder) if image_folder is not None else None
        if folder is not None and not folder.is_dir():
            raise FileNotFoundError(f"--image_folder {folder} is not a folder")
        self.records: list[CheckedRecord] = []
        raw_records = load_records(data_path)
        for index, raw in enumerate(tqdm(raw_records, desc=f"Checking {Path(data_path).name}", disable=not progress)):
            try:
                self.records.append(
                    check_record(raw, index, self.data_path, folder, template, tokenizer.eos_token, image_seq_length)
                )
            except RecordError as error:
                self._skip_or_raise(error)
        if not self.records:
            raise ValueError(f"--data_path {data_path}: no usable record")

    def _skip_or_raise(self, error: RecordError) -> None:
        if not self.skip_bad_records:
            raise error
        self.issue_log.add(DataIssue(SKIPPED, error.index, error.record_id, error.data_path, error.reason, error.image))

    def __len__(self) -> int:
        return len(self.records)

    @property
    def modality_lengths(self) -> list[int]:
        """Approximate lengths, negative for text-only records (LLaVA's convention for grouping)."""
        return [r.approx_length if r.image_paths else -r.approx_length for r in self.records]

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        # A record that fails here is replaced by the next good one (only with skip_bad_records).
        for offset in range(len(self.records)):
            record = self.records[(position + offset) % len(self.records)]
            try:
                return self._build(record)
            except RecordError as error:
                self._skip_or_raise(error)
        raise ValueError(f"--data_path {self.data_path}: every record failed to load")

    def _build(self, record: CheckedRecord) -> dict[str, torch.Tensor]:
        def fail(reason: str, image: str | None = None):
            raise RecordError(self.data_path, record.index, record.record_id, reason, image)

        item = {}
        if record.image_paths:
            item["pixel_values"] = torch.stack([self._read_image(path, fail) for path in record.image_paths])
        image_names = ", ".join(str(path) for path in record.image_paths) or None
        try:
            tokens = tokenize_conversation(
                self.template.segments(record.turns, self.tokenizer.eos_token),
                self.tokenizer,
                image_token_id=self.image_token_id,
                image_seq_length=self.image_seq_length,
                num_images=len(record.image_paths),
                max_length=self.model_max_length,
            )
        except ValueError as error:
            fail(str(error), image_names)
        if tokens.truncated_from is not None:
            self.issue_log.add(
                DataIssue(
                    TRUNCATED,
                    record.index,
                    record.record_id,
                    self.data_path,
                    f"{tokens.truncated_from} tokens truncated to model_max_length={self.model_max_length}",
                )
            )
        item["input_ids"] = torch.tensor(tokens.input_ids, dtype=torch.long)
        item["labels"] = torch.tensor(tokens.labels, dtype=torch.long)
        return item

    def _read_image(self, path: Path, fail) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            fail(f"cannot read the image ({type(error).__name__}: {error})", str(path))
        return self.process_image(image)
