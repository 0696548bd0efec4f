"""LLaVA's `model_vqa_loader` / `model_vqa_mmbench`: answer a question file, one chunk of it.

Question files:

* LLaVA's JSONL (`{"question_id", "image", "text", ...}`, images under `image_folder`), as for
  VQAv2 and POPE;
* MMBench's TSV (images as base64) or the Hub's parquet (images embedded): each row becomes the
  question `build_llava_prompt(row)` with `question_id` = MMBench `index`, as LLaVA's
  `--single-pred-prompt` builds it; the answer's `prompt` is that text without the suffix.

Answers go to a crash-safe JSONL (see `answer_files`): a batch's answers are written as soon as it
is done, and a rerun skips the questions already answered. Every image of the chunk is checked
before the model runs, so a missing file stops the run at once, naming it and its question.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm
from transformers import GenerationConfig

from llava_vitsplit.model.image_processing import open_image

from .answer_files import AnswerWriter, EvalFileError, get_chunk, make_answer, read_questions
from .inference import VisualQuestionAnswerer
from .mmbench import build_llava_prompt, llava_options, mmbench_row_image, read_mmbench_table

MMBENCH_SUFFIXES = (".tsv", ".parquet")


@dataclass(frozen=True)
class Question:
    """One question to answer: the text sent to the model, the `prompt` recorded in the answer, and
    its image, as a file (`image_path`) or as MMBench's embedded cell (`embedded_image`); neither
    for a text-only question."""

    question_id: object
    text: str
    recorded_prompt: str
    image_path: Path | None = None
    embedded_image: object = None
    metadata: dict = field(default_factory=dict)

    @property
    def has_image(self) -> bool:
        return self.image_path is not None or self.embedded_image is not None

    def load_image(self):
        """The question's image as RGB PIL; an unreadable one is named with the question id."""
        try:
            if self.image_path is not None:
                return open_image(self.image_path)
            return mmbench_row_image({"index": self.question_id, "image": self.embedded_image})
        except FileNotFoundError as error:
            raise FileNotFoundError(f"question_id {self.question_id!r}: {error}") from error
        except (OSError, ValueError) as error:
            raise ValueError(f"question_id {self.question_id!r}: {error}") from error


def _jsonl_questions(question_file: Path, image_folder: Path | None) -> list[Question]:
    questions = []
    for record in read_questions(question_file, required_fields=("question_id", "text")):
        image = record.get("image")
        if image and image_folder is None:
            raise EvalFileError(
                f"{question_file}: question {record['question_id']!r} has an image ({image}); give --image-folder"
            )
        image_path = image_folder / image if image else None
        questions.append(Question(record["question_id"], record["text"], record["text"], image_path))
    return questions


def _mmbench_questions(question_file: Path) -> list[Question]:
    table = read_mmbench_table(question_file, with_images=True)
    if "image" not in table.columns:
        raise EvalFileError(f"{question_file}: MMBench table has no image column")
    questions = []
    for row in table.to_dict("records"):
        index = int(row["index"])
        options = llava_options(row)
        questions.append(
            Question(
                index,
                build_llava_prompt(row),
                build_llava_prompt(row, with_suffix=False),
                embedded_image=row["image"],
                metadata={"options": list(options.values()), "option_char": list(options)},
            )
        )
    return questions


def read_benchmark_questions(
    question_file: str | Path, image_folder: str | Path | None = None
) -> list[Question]:
    """The questions of a LLaVA JSONL question file, or of an MMBench .tsv/.parquet table."""
    question_file = Path(question_file)
    if not question_file.is_file():
        raise FileNotFoundError(f"question file not found: {question_file}")
    if question_file.suffix in MMBENCH_SUFFIXES:
        return _mmbench_questions(question_file)
    return _jsonl_questions(question_file, Path(image_folder) if image_folder else None)


def check_images_exist(questions: list[Question]) -> None:
    """Fail before any model work when an image file of these questions is missing."""
    for question in questions:
        if question.image_path is not None and not question.image_path.is_file():
            raise FileNotFoundError(
                f"image file not found: {question.image_path} (question_id {question.question_id!r})"
            )


def answer_question_file(
    load_answerer: Callable[[], VisualQuestionAnswerer],
    question_file: str | Path,
    answers_file: str | Path,
    *,
    image_folder: str | Path | None = None,
    num_chunks: int = 1,
    chunk_idx: int = 0,
    batch_size: int = 8,
    settings: GenerationConfig | None = None,
    model_id: str = "llava_vitsplit",
    writer: dict | None = None,
) -> int:
    """Answer chunk `chunk_idx` of `num_chunks` of a question file into `answers_file`, resuming
    it. The questions and images are checked first, and `load_answerer()` is called only when
    questions remain, so a bad file fails fast and a finished chunk loads no model. Returns the
    number of answers written by this call. `writer` (see `provenance`) is recorded in every answer,
    and an answers file written by another model or with other settings is not resumed."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    chunk = get_chunk(read_benchmark_questions(question_file, image_folder), num_chunks, chunk_idx)
    with AnswerWriter(answers_file, writer) as answers:
        pending = [question for question in chunk if question.question_id not in answers.answered]
        check_images_exist(pending)
        if len(pending) < len(chunk):
            print(
                f"{answers_file}: {len(chunk) - len(pending)} of {len(chunk)} questions answered before; resuming"
            )
        if not pending:
            return 0
        answerer = load_answerer()
        progress = tqdm(total=len(pending), desc=f"chunk {chunk_idx} of {num_chunks}", unit="question")
        with progress:
            for start in range(0, len(pending), batch_size):
                batch = pending[start : start + batch_size]
                images = [[question.load_image()] if question.has_image else [] for question in batch]
                replies = answerer.generate([question.text for question in batch], images, settings)
                for question, reply in zip(batch, replies):
                    record = make_answer(
                        question.question_id, question.recorded_prompt, reply, model_id, question.metadata, writer
                    )
                    answers.write(record)
                progress.update(len(batch))
    return len(pending)
