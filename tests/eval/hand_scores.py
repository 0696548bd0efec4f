"""Scores computed by hand from each benchmark's definition, to check what the pipelines report.

POPE: the answer's first sentence (text before the first period, commas dropped, split on spaces)
means "no" when a word is No/no/not, else "yes"; pooled accuracy, precision, recall, F1 and the
share of "yes" predictions. VQAv2: the mean over the 10 leave-one-annotator-out subsets of
min(#humans agreeing / 3, 1), answers compared after the official normalisation. MMBench: the share
of questions whose option letter read from the answer equals the key.
"""

from __future__ import annotations

from llava_vitsplit.eval.mmbench import extract_option_letter, llava_options
from llava_vitsplit.eval.vqav2 import normalize_answer


def pope_by_hand(labels: list[str], answers: list[str]) -> dict:
    predictions = []
    for answer in answers:
        words = answer.split(".")[0].replace(",", "").split(" ")
        predictions.append("no" if any(word in ("No", "no", "not") for word in words) else "yes")
    pairs = list(zip(predictions, labels))
    tp = pairs.count(("yes", "yes"))
    fp = pairs.count(("yes", "no"))
    tn = pairs.count(("no", "no"))
    fn = pairs.count(("no", "yes"))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / len(pairs),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "yes_ratio": predictions.count("yes") / len(pairs),
    }


def vqa_by_hand(humans: list[str], answer: str) -> float:
    answer = normalize_answer(answer)
    humans = [normalize_answer(human) for human in humans]
    subsets = [humans[:left_out] + humans[left_out + 1 :] for left_out in range(len(humans))]
    return sum(min(subset.count(answer) / 3, 1.0) for subset in subsets) / len(subsets)


def vqav2_by_hand(items: list[dict], answers: list[str]) -> float:
    return sum(vqa_by_hand(item["humans"], answer) for item, answer in zip(items, answers)) / len(items)


def mmbench_by_hand(items: list[dict], answers: list[str]) -> float:
    hits = [
        extract_option_letter(answer, llava_options(item)) == item["answer"]
        for item, answer in zip(items, answers)
    ]
    return sum(hits) / len(hits)
