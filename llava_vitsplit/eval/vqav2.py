"""VQAv2: the official answer normalisation, the two accuracy formulas, and the test-dev submission file.

Normalisation follows the official VQA evaluation (and EvalAI's server, which applies it to every
submitted answer): punctuation is dropped or turned into spaces, periods go unless they are decimal
points, text is lowercased, number words zero..ten become digits, articles go, and apostrophe-less
contractions get their apostrophes back ("dont" -> "don't").

Accuracy, for one question with 10 human answers:
- `vqa_accuracy` is the official metric: the mean over the 10 leave-one-annotator-out subsets of 9
  answers of min(#matches in the subset / 3, 1). lmms-eval's `vqav2_val` (`exact_match`) computes
  this one, normalising prediction and human answers alike; so do we.
- `vqa_accuracy_simple` is the formula as usually written, min(#matching humans / 3, 1).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tqdm import tqdm

# Characters the official evaluation removes (when spaced or when the answer has a digit-comma-digit)
# or else replaces by a space. Apostrophes, colons and periods are not among them.
_PUNCTUATION = tuple(';/[]"{}()=+\\_-><@`,?!')
# The official pattern carries a mistyped look-behind that never fires; its effect is this:
# a period goes unless a digit follows it ("3.5" keeps its point).
_PERIOD_NOT_DECIMAL = re.compile(r"\.(?!\d)")
_DIGIT_COMMA_DIGIT = re.compile(r"(?<=\d),+(?=\d)")
_NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = frozenset({"a", "an", "the"})

# Contractions the official table restores. Every spelling with exactly one apostrophe missing maps
# to the full form (that rule reproduces the official table). Its entries with capital letters are
# left out: words are lowercased before the lookup, so those never match.
_CONTRACTIONS = (
    "ain't", "aren't", "can't", "could've", "couldn't", "couldn't've", "didn't", "doesn't", "don't",
    "hadn't", "hadn't've", "hasn't", "haven't", "he'd", "he'd've", "he's", "how'd", "how'll", "how's",
    "isn't", "it'd", "it'd've", "it'll", "ma'am", "mightn't", "mightn't've", "might've", "mustn't",
    "must've", "needn't", "not've", "o'clock", "oughtn't", "'ow's'at", "shan't", "she'd've",
    "should've", "shouldn't", "shouldn't've", "somebody'd've", "somebody'll", "somebody's",
    "someone'd", "someone'd've", "someone'll", "someone's", "something'd", "something'd've",
    "something'll", "that's", "there'd", "there'd've", "there're", "there's", "they'd", "they'd've",
    "they'll", "they're", "they've", "'twas", "wasn't", "we'd've", "we've", "weren't", "what'll",
    "what're", "what's", "what've", "when's", "where'd", "where's", "where've", "who'd", "who'd've",
    "who'll", "who's", "who've", "why'll", "why're", "why's", "won't", "would've", "wouldn't",
    "wouldn't've", "y'all", "y'all'll", "y'all'd've", "you'd", "you'd've", "you'll", "you're", "you've",
)  # fmt: skip


def _contraction_table() -> dict[str, str]:
    table = {}
    for full in _CONTRACTIONS:
        for position, char in enumerate(full):
            if char == "'":
                table[full[:position] + full[position + 1 :]] = full
    # The official table has this one entry backwards; kept so scores stay comparable.
    table["somebody'd"] = "somebodyd"
    return table


CONTRACTIONS = _contraction_table()


def _process_punctuation(text: str) -> str:
    remove_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for mark in _PUNCTUATION:
        # The decision looks at the original text, as the official code does.
        if remove_all or (mark + " ") in text or (" " + mark) in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_NOT_DECIMAL.sub("", out)


def _process_digits_articles(text: str) -> str:
    words = [_NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    words = [CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES]
    return " ".join(words)


@lru_cache(maxsize=1 << 16)  # human answers repeat a lot ("yes", "2", ...)
def normalize_answer(text: str) -> str:
    """The official VQA evaluation's normalisation of one answer ("a dog." -> "dog", "Two" -> "2")."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _process_digits_articles(_process_punctuation(text))


def normalize_for_submission(text: str) -> str:
    """EvalAI's answer processor, which LLaVA applies before writing the submission file.

    On top of `normalize_answer` it lowercases first, deletes commas and question marks, and
    detaches a possessive "'s".
    """
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return normalize_answer(text)


def _matches(prediction: str, human_answers: Sequence[str]) -> list[bool]:
    if not human_answers:
        raise ValueError("VQA accuracy needs at least one human answer")
    predicted = normalize_answer(prediction)
    return [normalize_answer(answer) == predicted for answer in human_answers]


def _leave_one_out(matches: list[bool]) -> float:
    total = sum(matches)
    # Leaving out annotator i leaves total - matches[i] matching answers among the others.
    return sum(min((total - left_out) / 3, 1.0) for left_out in matches) / len(matches)


def vqa_accuracy(prediction: str, human_answers: Sequence[str]) -> float:
    """Official VQA accuracy: mean over leave-one-out subsets of min(#matches / 3, 1)."""
    return _leave_one_out(_matches(prediction, human_answers))


def vqa_accuracy_simple(prediction: str, human_answers: Sequence[str]) -> float:
    """The formula as usually quoted: min(#humans who gave the answer / 3, 1)."""
    return min(sum(_matches(prediction, human_answers)) / 3, 1.0)


@dataclass(frozen=True)
class VQAv2Annotation:
    """The human answers of one question, and its answer type (yes/no, number, other)."""

    question_id: int
    answers: tuple[str, ...]
    answer_type: str

    def __post_init__(self) -> None:
        if not self.answers:
            raise ValueError(f"VQAv2 question {self.question_id} has no human answers")


def read_vqav2_annotations(path: str | Path) -> dict[int, VQAv2Annotation]:
    """Read human answers from the official annotation JSON (`{"annotations": [...]}`) or from a
    Hub-format parquet file (lmms-lab/VQAv2 columns `question_id`, `answers`, `answer_type`)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path, columns=["question_id", "answers", "answer_type"]).to_pylist()
    else:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        if not isinstance(document, dict) or "annotations" not in document:
            raise ValueError(
                f"{path}: expected the official VQAv2 annotation JSON with an 'annotations' list"
            )
        rows = document["annotations"]
    annotations = {}
    for position, row in enumerate(rows):
        try:
            question_id = int(row["question_id"])
            answers = tuple(item["answer"] for item in row["answers"])
            annotation = VQAv2Annotation(question_id, answers, str(row.get("answer_type") or "unknown"))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: annotation #{position} is malformed: {error!r}") from error
        annotations[question_id] = annotation
    return annotations


def score_vqav2(answers: Mapping[int, str], annotations: Mapping[int, VQAv2Annotation]) -> dict:
    """Accuracy (official and simple formulas) of `answers` {question_id: text}, overall and per
    answer type. Every answered question must have an annotation."""
    unknown = [qid for qid in answers if qid not in annotations]
    if unknown:
        raise ValueError(f"{len(unknown)} answered question ids have no annotation, e.g. {unknown[:5]}")
    if not answers:
        raise ValueError("no answers to score")
    official, simple, by_type = [], [], {}
    for question_id, text in tqdm(answers.items(), desc="VQAv2 accuracy", disable=None):
        annotation = annotations[question_id]
        matches = _matches(text, annotation.answers)
        score = _leave_one_out(matches)
        official.append(score)
        simple.append(min(sum(matches) / 3, 1.0))
        by_type.setdefault(annotation.answer_type, []).append(score)
    return {
        "accuracy": sum(official) / len(official),
        "accuracy_simple": sum(simple) / len(simple),
        "per_answer_type": {kind: sum(scores) / len(scores) for kind, scores in sorted(by_type.items())},
        "num_questions": len(official),
    }


@dataclass(frozen=True)
class SubmissionSummary:
    path: Path
    num_questions: int
    num_answered: int

    @property
    def num_blank(self) -> int:
        return self.num_questions - self.num_answered


def write_vqav2_submission(
    answers: Mapping[int, str],
    question_ids: Iterable[int],
    path: str | Path,
    fill_missing: bool = False,
) -> SubmissionSummary:
    """Write the EvalAI upload `[{"question_id", "answer"}]` for `question_ids`, in that order.

    EvalAI's test-dev phase expects every test2015 question; LLaVA answers only the test-dev subset
    and submits "" for the rest. That needs `fill_missing=True`; otherwise a question without an
    answer is an error. Answers to questions outside `question_ids` are an error too.
    """
    question_ids = list(question_ids)
    wanted = set(question_ids)
    extra = [qid for qid in answers if qid not in wanted]
    if extra:
        raise ValueError(
            f"{len(extra)} answers are for questions outside the submission split, e.g. {extra[:5]}"
        )
    missing = [qid for qid in question_ids if qid not in answers]
    if missing and not fill_missing:
        raise ValueError(
            f"{len(missing)} of {len(question_ids)} questions have no answer, e.g. {missing[:5]}; "
            "pass fill_missing=True (--fill-missing) to submit them blank, as LLaVA does for test-dev"
        )
    records = [
        {"question_id": qid, "answer": normalize_for_submission(answers[qid]) if qid in answers else ""}
        for qid in question_ids
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(records, handle)
    return SubmissionSummary(path, len(question_ids), len(question_ids) - len(missing))
