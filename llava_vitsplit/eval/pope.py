"""POPE (object hallucination): LLaVA's yes/no reading of a free answer and the binary metrics.

An answer counts as "no" when its first sentence contains the word "No", "no" or "not" (LLaVA's
rule, kept word for word so numbers compare: "NO" and "Nope" read as yes); anything else is "yes".
Metrics treat "yes" as the positive class; the yes-ratio is the share of *predicted* yes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

POPE_CATEGORIES = ("adversarial", "popular", "random")
_NEGATIVE_WORDS = frozenset({"No", "no", "not"})


def parse_yes_no(text: str) -> str:
    """LLaVA's POPE rule: keep the text before the first period, drop commas, split on spaces;
    "no" when a word is No/no/not, otherwise "yes"."""
    first_sentence = text.split(".", 1)[0].replace(",", "")
    return "no" if _NEGATIVE_WORDS.intersection(first_sentence.split(" ")) else "yes"


def _check_label(label: str, where: str) -> str:
    label = label.strip().lower()
    if label not in ("yes", "no"):
        raise ValueError(f"{where}: POPE label must be 'yes' or 'no', got {label!r}")
    return label


@dataclass(frozen=True)
class PopeMetrics:
    """Confusion counts with "yes" as positive; the metrics derive from them.

    A ratio whose denominator is zero (e.g. precision with no predicted yes) is reported as 0.0.
    """

    true_positive: int
    false_positive: int
    true_negative: int
    false_negative: int

    def __post_init__(self) -> None:
        if min(self.true_positive, self.false_positive, self.true_negative, self.false_negative) < 0:
            raise ValueError(f"confusion counts must be non-negative: {self}")

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> PopeMetrics:
        """Count (predicted, label) pairs, both "yes"/"no"."""
        counts = {("yes", "yes"): 0, ("yes", "no"): 0, ("no", "no"): 0, ("no", "yes"): 0}
        for predicted, label in pairs:
            if (predicted, label) not in counts:
                raise ValueError(
                    f"POPE pair must be yes/no, got prediction {predicted!r} and label {label!r}"
                )
            counts[predicted, label] += 1
        return cls(counts["yes", "yes"], counts["yes", "no"], counts["no", "no"], counts["no", "yes"])

    @property
    def total(self) -> int:
        return self.true_positive + self.false_positive + self.true_negative + self.false_negative

    @staticmethod
    def _ratio(numerator: int | float, denominator: int | float) -> float:
        return numerator / denominator if denominator else 0.0

    @property
    def accuracy(self) -> float:
        return self._ratio(self.true_positive + self.true_negative, self.total)

    @property
    def precision(self) -> float:
        return self._ratio(self.true_positive, self.true_positive + self.false_positive)

    @property
    def recall(self) -> float:
        return self._ratio(self.true_positive, self.true_positive + self.false_negative)

    @property
    def f1(self) -> float:
        return self._ratio(2 * self.precision * self.recall, self.precision + self.recall)

    @property
    def yes_ratio(self) -> float:
        return self._ratio(self.true_positive + self.false_positive, self.total)

    def as_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "yes_ratio": self.yes_ratio,
            "num_questions": self.total,
            "tp": self.true_positive,
            "fp": self.false_positive,
            "tn": self.true_negative,
            "fn": self.false_negative,
        }


def summarize_pope(records: Iterable[tuple[str, str, str]]) -> dict:
    """Metrics of (category, predicted yes/no, label yes/no) triples: per category, over all
    questions pooled ("overall"), and the mean of the per-category metrics ("category_mean")."""
    by_category: dict[str, list[tuple[str, str]]] = {}
    for category, predicted, label in records:
        by_category.setdefault(category, []).append((predicted, label))
    if not by_category:
        raise ValueError("no POPE answers to score")
    per_category = {name: PopeMetrics.from_pairs(pairs) for name, pairs in sorted(by_category.items())}
    overall = PopeMetrics.from_pairs(pair for pairs in by_category.values() for pair in pairs)
    mean_keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
    category_mean = {
        key: sum(getattr(metrics, key) for metrics in per_category.values()) / len(per_category)
        for key in mean_keys
    }
    return {
        "categories": {name: metrics.as_dict() for name, metrics in per_category.items()},
        "overall": overall.as_dict(),
        "category_mean": category_mean,
    }


@dataclass(frozen=True)
class PopeAnnotation:
    """One line of a POPE annotation file; `where` is its "file:line" for error messages."""

    image: str
    text: str
    label: str
    where: str


def read_pope_annotations(annotation_dir: str | Path) -> dict[str, list[PopeAnnotation]]:
    """Read POPE's `coco_pope_<category>.json` files (JSON lines with `image`, `text`, `label`) from
    a folder, as LLaVA's evaluation does. Every JSON file there must follow that naming."""
    annotation_dir = Path(annotation_dir)
    files = sorted(annotation_dir.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{annotation_dir}: no coco_pope_<category>.json annotation files")
    annotations = {}
    for path in files:
        if not path.name.startswith("coco_pope_"):
            raise ValueError(f"{path}: POPE annotation files must be named coco_pope_<category>.json")
        category = path.stem[len("coco_pope_") :]
        records = []
        with open(path, encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{where}: not valid JSON ({error.msg})") from error
                for field in ("image", "text", "label"):
                    if field not in record:
                        raise ValueError(f"{where}: annotation lacks the field {field!r}")
                label = _check_label(str(record["label"]), where)
                records.append(PopeAnnotation(str(record["image"]), str(record["text"]), label, where))
        annotations[category] = records
    return annotations


def label_questions(questions: Iterable[dict], annotations: Mapping[str, list[PopeAnnotation]]) -> dict:
    """Give each question its label: {question_id: (category, label)}.

    POPE's annotation files have no ids shared with LLaVA's question file, so, like LLaVA, the
    questions of a category are paired in file order with that category's annotations. Unlike
    LLaVA, each pair is checked (same image, question text starting with the annotation's text),
    so a reordered or truncated file is an error instead of silently wrong scores.
    """
    by_category: dict[str, list[dict]] = {}
    for question in questions:
        if "category" not in question:
            raise ValueError(f"POPE question {question.get('question_id')!r} has no 'category' field")
        by_category.setdefault(question["category"], []).append(question)
    unknown = sorted(set(by_category) - set(annotations))
    if unknown:
        raise ValueError(
            f"question categories {unknown} have no annotation file (found {sorted(annotations)})"
        )
    labels = {}
    for category, category_questions in by_category.items():
        category_annotations = annotations[category]
        if len(category_questions) != len(category_annotations):
            raise ValueError(
                f"category {category!r}: {len(category_questions)} questions but "
                f"{len(category_annotations)} annotations"
            )
        for question, annotation in zip(category_questions, category_annotations, strict=True):
            same_image = Path(str(question.get("image", ""))).name == Path(annotation.image).name
            same_text = str(question.get("text", "")).strip().startswith(annotation.text.strip())
            if not (same_image and same_text):
                raise ValueError(
                    f"{annotation.where} ({annotation.image}, {annotation.text!r}) does not line up with "
                    f"question {question['question_id']!r} ({question.get('image')}, {question.get('text')!r})"
                )
            labels[question["question_id"]] = (category, annotation.label)
    return labels


def score_pope(
    answers: Mapping,
    questions: Iterable[dict],
    annotations: Mapping[str, list[PopeAnnotation]],
    allow_missing: bool = False,
) -> dict:
    """Score `answers` {question_id: text} against POPE labels (see `label_questions`).

    A question without an answer is an error unless `allow_missing`, in which case the answered ones
    are scored and the result's "num_unanswered" says how many were left out.
    """
    labels = label_questions(questions, annotations)
    unknown = [qid for qid in answers if qid not in labels]
    if unknown:
        raise ValueError(f"{len(unknown)} answers are for unknown question ids, e.g. {unknown[:5]}")
    unanswered = [qid for qid in labels if qid not in answers]
    if unanswered and not allow_missing:
        raise ValueError(
            f"{len(unanswered)} of {len(labels)} questions have no answer, e.g. {unanswered[:5]}"
        )
    summary = summarize_pope(
        (labels[qid][0], parse_yes_no(text), labels[qid][1]) for qid, text in answers.items()
    )
    summary["num_unanswered"] = len(unanswered)
    return summary
