"""LLaVA's evaluation files: question JSONL in, answer JSONL out, sharded and resumable.

Questions: one JSON object per line, `{"question_id", "image", "text", ...}`.
Answers: one per line, `{"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}`,
plus `writer` (the model's fingerprint and the generation settings, see `provenance`): a resume
by another writer, or a merge of several, is refused.

Answer files are crash-safe: each record is written whole in one call and flushed to disk, so a
crash leaves at most one partial last line. Reopening the file drops that line and reports the ids
already answered, so a rerun continues where the last one stopped.

Sharding follows LLaVA's `--num-chunks/--chunk-idx`: chunks of ceil(N / num_chunks) questions in
file order. (With that rounding there can be fewer chunks than asked, e.g. 9 questions in 4 chunks
of 3; LLaVA's indexing then fails on the last chunk, here it is empty.)
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from .provenance import check_one_writer, check_same_writer

QUESTION_FIELDS = ("question_id", "image", "text")
ANSWER_FIELDS = ("question_id", "prompt", "text", "answer_id", "model_id", "metadata")


class EvalFileError(ValueError):
    """A malformed question or answer file; the message names the file and line."""


def _parse_line(path: Path, line_number: int, line: str) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise EvalFileError(
            f"{path}:{line_number}: not valid JSON ({error.msg} at column {error.colno})"
        ) from error
    if not isinstance(record, dict):
        raise EvalFileError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
    return record


def read_questions(path: str | Path, required_fields: Sequence[str] = QUESTION_FIELDS) -> list[dict]:
    """All questions of a JSONL file, in order. Blank lines are allowed; a malformed line, a missing
    field or a repeated question_id is an error naming the line."""
    path = Path(path)
    questions, first_line_of = [], {}
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = _parse_line(path, line_number, line)
            missing = [field for field in required_fields if field not in record]
            if missing:
                raise EvalFileError(f"{path}:{line_number}: question lacks the fields {missing}")
            question_id = record.get("question_id")
            if question_id in first_line_of:
                raise EvalFileError(
                    f"{path}:{line_number}: question_id {question_id!r} already used on line {first_line_of[question_id]}"
                )
            first_line_of[question_id] = line_number
            questions.append(record)
    return questions


def split_list(items: Sequence, num_chunks: int) -> list[Sequence]:
    """LLaVA's split: consecutive chunks of ceil(len / num_chunks) items (possibly fewer chunks)."""
    if num_chunks < 1:
        raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
    size = max(1, math.ceil(len(items) / num_chunks))
    return [items[start : start + size] for start in range(0, len(items), size)]


def get_chunk(items: Sequence, num_chunks: int, chunk_idx: int) -> Sequence:
    """Chunk `chunk_idx` of `split_list(items, num_chunks)`; empty when rounding left it none."""
    if not 0 <= chunk_idx < num_chunks:
        raise ValueError(f"chunk_idx must be in [0, {num_chunks}), got {chunk_idx}")
    chunks = split_list(items, num_chunks)
    return chunks[chunk_idx] if chunk_idx < len(chunks) else items[:0]


def make_answer(
    question_id, prompt: str, text: str, model_id: str, metadata: dict | None = None, writer: dict | None = None
) -> dict:
    """An answer record in LLaVA's layout, with a fresh answer_id (and what wrote it, when given)."""
    record = {
        "question_id": question_id,
        "prompt": prompt,
        "text": text,
        "answer_id": uuid.uuid4().hex,
        "model_id": model_id,
        "metadata": metadata or {},
    }
    if writer is not None:
        record["writer"] = writer
    return record


def write_answer(handle, record: dict) -> None:
    """Append one answer as a whole line and push it to disk before returning."""
    missing = [field for field in ANSWER_FIELDS if field not in record]
    if missing:
        raise ValueError(f"answer for question {record.get('question_id')!r} lacks the fields {missing}")
    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


def read_answers(path: str | Path, repair: bool = False) -> dict:
    """Answers of a JSONL file as {question_id: record}, in file order.

    A last line without its newline is what a crash mid-write leaves: with `repair` it is cut off
    the file (or, if it is a complete record, given its newline); without, it is an error. A bad
    line anywhere else, or a question answered twice, is always an error.
    """
    path = Path(path)
    data = path.read_bytes()
    complete_end = data.rfind(b"\n") + 1
    tail = data[complete_end:]
    if tail.strip():
        if not repair:
            raise EvalFileError(
                f"{path}: the last line is incomplete (a crash mid-write?); resume to repair it"
            )
        try:
            _parse_line(path, 0, tail.decode("utf-8"))
            with open(path, "ab") as handle:
                handle.write(b"\n")
            complete_end = len(data) + 1
            data += b"\n"
        except (EvalFileError, UnicodeDecodeError):
            with open(path, "r+b") as handle:
                handle.truncate(complete_end)
            data = data[:complete_end]
    answers, first_line_of = {}, {}
    for line_number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = _parse_line(path, line_number, line)
        if "question_id" not in record or "text" not in record:
            raise EvalFileError(f"{path}:{line_number}: answer lacks 'question_id' or 'text'")
        question_id = record["question_id"]
        if question_id in first_line_of:
            raise EvalFileError(
                f"{path}:{line_number}: question_id {question_id!r} already answered on line {first_line_of[question_id]}"
            )
        first_line_of[question_id] = line_number
        answers[question_id] = record
    return answers


def answer_texts(path: str | Path) -> dict:
    """{question_id: answer text} of a complete answers file (scoring reads this)."""
    return {question_id: record["text"] for question_id, record in read_answers(path).items()}


class AnswerWriter:
    """Appends answers to a file, resuming it: on opening, a partial last line is dropped and the
    question ids already answered are in `answered`. With `writer` (an answer's `writer` record),
    answers already there must have been written by the same model and settings.

        with AnswerWriter(path) as writer:
            for question in writer.pending(chunk):
                writer.write(make_answer(...))
    """

    def __init__(self, path: str | Path, writer: dict | None = None):
        self.path = Path(path)
        self.writer = writer
        self.answered: set = set()
        self._handle = None

    def __enter__(self) -> AnswerWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            answers = read_answers(self.path, repair=True)
            if self.writer is not None:
                check_same_writer(self.path, answers, self.writer)
            self.answered = set(answers)
        self._handle = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc_info) -> None:
        self._handle.close()

    def pending(self, questions: Iterable[dict]) -> list[dict]:
        return [question for question in questions if question["question_id"] not in self.answered]

    def write(self, record: dict) -> None:
        if record["question_id"] in self.answered:
            raise ValueError(f"{self.path}: question {record['question_id']!r} is already answered")
        write_answer(self._handle, record)
        self.answered.add(record["question_id"])


def iter_pending_questions(
    question_file: str | Path, answers_file: str | Path, num_chunks: int = 1, chunk_idx: int = 0
) -> list[dict]:
    """The questions of chunk `chunk_idx` not yet answered in `answers_file` (repairing its partial
    last line, if any). Chunks are cut from the whole question file, so they do not move as
    answers accumulate."""
    chunk = get_chunk(read_questions(question_file), num_chunks, chunk_idx)
    answers_file = Path(answers_file)
    if not answers_file.exists():
        return list(chunk)
    answered = read_answers(answers_file, repair=True)
    return [question for question in chunk if question["question_id"] not in answered]


def merge_answer_files(
    chunk_files: Iterable[str | Path], output: str | Path, question_file: str | Path | None = None
):
    """Concatenate per-chunk answer files into one. With `question_file`, answers are written in
    question order and every question must be answered. A question answered in two chunk files,
    or a chunk file with a partial last line, or answers of different writers, is an error. Returns
    the number of answers."""
    merged, source_of = {}, {}
    answers_by_file = [(chunk_file, read_answers(chunk_file)) for chunk_file in chunk_files]
    check_one_writer(answers_by_file)
    for chunk_file, answers in answers_by_file:
        for question_id, record in answers.items():
            if question_id in merged:
                raise EvalFileError(
                    f"question_id {question_id!r} is answered in both {source_of[question_id]} and {chunk_file}"
                )
            merged[question_id] = record
            source_of[question_id] = chunk_file
    order = list(merged)
    if question_file is not None:
        order = [question["question_id"] for question in read_questions(question_file)]
        known = set(order)
        unknown = [qid for qid in merged if qid not in known]
        if unknown:
            raise EvalFileError(
                f"{len(unknown)} answers are for questions not in {question_file}, e.g. {unknown[:5]}"
            )
        missing = [qid for qid in order if qid not in merged]
        if missing:
            raise EvalFileError(
                f"{len(missing)} questions of {question_file} have no answer, e.g. {missing[:5]}"
            )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as handle:
        for question_id in order:
            handle.write(json.dumps(merged[question_id], ensure_ascii=False) + "\n")
    return len(order)
