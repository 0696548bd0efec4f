"""Scoring answers to the held-out scene questions against chance and the majority-class baseline.

A prediction is right when its normalised text equals the normalised answer. Normalising lowers
case, drops punctuation and leading articles ("a", "an", "the"), writes number words as digits
("two" -> "2") and unifies "centre"/"center". Presence questions are judged on the first word only
("Yes, there is." counts as "yes"), as POPE does.

Two baselines per type: chance (a uniform guess among the candidate answers, 1/#candidates) and
the majority class (always giving the most frequent answer among the scored questions). The
honest bar is the higher of the two.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from llava_vitsplit.quickstart.scene_dataset import HeldoutSet

_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_SPELLINGS = {"centre": "center"}
_ARTICLES = {"a", "an", "the"}
_FIRST_WORD_TYPES = {"presence"}


def normalize_answer(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    while words and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(_SPELLINGS.get(w, _NUMBER_WORDS.get(w, w)) for w in words)


def _judged(text: str, question_type: str) -> str:
    normalized = normalize_answer(text)
    if question_type in _FIRST_WORD_TYPES:
        return normalized.split(" ", 1)[0]
    return normalized


@dataclass(frozen=True)
class TypeScore:
    """Accuracy on one question type (or overall), with the baselines it must beat."""

    type: str
    total: int
    correct: int
    chance: float  # expected accuracy of a uniform guess among the candidates
    majority: float  # accuracy of always giving the most frequent answer
    off_candidates: int  # predictions that are none of the candidate answers

    @property
    def accuracy(self) -> float:
        return self.correct / self.total

    @property
    def baseline(self) -> float:
        return max(self.chance, self.majority)


@dataclass(frozen=True)
class ScoreReport:
    per_type: tuple[TypeScore, ...]
    overall: TypeScore


def score_predictions(heldout: HeldoutSet, predictions: Mapping[str, str]) -> ScoreReport:
    """Score `predictions` ({question_id: generated text}) on every question of `heldout`.

    To score a subset, pass a `HeldoutSet` holding only those questions. A missing prediction or an
    unknown question id is an error, not a silent zero.
    """
    expected_ids = {q.question_id for q in heldout.questions}
    missing = [q.question_id for q in heldout.questions if q.question_id not in predictions]
    if missing:
        raise ValueError(f"no prediction for {len(missing)} held-out question(s), e.g. {missing[:3]}")
    unknown = sorted(str(qid) for qid in predictions if qid not in expected_ids)
    if unknown:
        raise ValueError(f"{len(unknown)} prediction(s) for unknown question ids, e.g. {unknown[:3]}")
    if not heldout.questions:
        raise ValueError("there are no held-out questions to score")
    rows = []
    for question_type in sorted({q.type for q in heldout.questions}):
        questions = [q for q in heldout.questions if q.type == question_type]
        candidates = {normalize_answer(a) for a in heldout.candidates[question_type]}
        judged = [_judged(predictions[q.question_id], question_type) for q in questions]
        answer_counts = Counter(q.answer for q in questions)
        rows.append(
            TypeScore(
                type=question_type,
                total=len(questions),
                correct=sum(j == normalize_answer(q.answer) for j, q in zip(judged, questions, strict=True)),
                chance=1.0 / len(candidates),
                majority=answer_counts.most_common(1)[0][1] / len(questions),
                off_candidates=sum(j not in candidates for j in judged),
            )
        )
    total = sum(row.total for row in rows)
    overall = TypeScore(
        type="overall",
        total=total,
        correct=sum(row.correct for row in rows),
        # Question-weighted means: what the per-type baselines add up to on this question mix.
        chance=sum(row.chance * row.total for row in rows) / total,
        majority=sum(row.majority * row.total for row in rows) / total,
        off_candidates=sum(row.off_candidates for row in rows),
    )
    return ScoreReport(tuple(rows), overall)


def format_score_table(report: ScoreReport) -> str:
    """A plain-text table: one row per question type, then the overall row."""
    header = ("type", "questions", "accuracy", "chance", "majority", "off-candidates")
    lines = []
    for row in (*report.per_type, report.overall):
        lines.append(
            (
                row.type,
                str(row.total),
                f"{100 * row.accuracy:.1f}%",
                f"{100 * row.chance:.1f}%",
                f"{100 * row.majority:.1f}%",
                str(row.off_candidates),
            )
        )
    widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join(
            [first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))]
        )

    rule = "-" * len(render(header))
    return "\n".join([render(header), rule, *(render(c) for c in lines[:-1]), rule, render(lines[-1])])
