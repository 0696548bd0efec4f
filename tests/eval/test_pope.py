import json

import pytest

from llava_vitsplit.eval.pope import (
    PopeMetrics,
    parse_yes_no,
    read_pope_annotations,
    score_pope,
    summarize_pope,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes, there is a dog in the image.", "yes"),
        ("No.", "no"),
        ("No, there isn't.", "no"),  # the comma is dropped before splitting
        ("There is not a cat in the image.", "no"),
        ("Yes. There is no cat elsewhere.", "yes"),  # only the first sentence counts
        ("I do not think so", "no"),
        ("NO", "yes"),  # LLaVA's rule matches No/no/not only
        ("Nope", "yes"),
        ("", "yes"),
    ],
)
def test_llava_yes_no_rule(text, expected):
    assert parse_yes_no(text) == expected


def test_metrics_from_a_confusion_worked_by_hand():
    # Labels yes,yes,yes,no,no,no; predictions yes,no,yes,no,no,yes -> TP 2, FN 1, TN 2, FP 1.
    pairs = [("yes", "yes"), ("no", "yes"), ("yes", "yes"), ("no", "no"), ("no", "no"), ("yes", "no")]
    metrics = PopeMetrics.from_pairs(pairs)
    assert (metrics.true_positive, metrics.false_negative, metrics.true_negative, metrics.false_positive) == (
        2,
        1,
        2,
        1,
    )
    assert metrics.accuracy == pytest.approx(4 / 6)
    assert metrics.precision == pytest.approx(2 / 3)
    assert metrics.recall == pytest.approx(2 / 3)
    assert metrics.f1 == pytest.approx(2 / 3)
    assert metrics.yes_ratio == pytest.approx(0.5)  # share of predicted yes


def test_degenerate_ratios_are_zero_and_bad_pairs_rejected():
    metrics = PopeMetrics.from_pairs([("no", "yes"), ("no", "no")])
    assert (metrics.precision, metrics.recall, metrics.f1, metrics.yes_ratio) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="yes/no"):
        PopeMetrics.from_pairs([("maybe", "yes")])


def test_summary_per_category_overall_and_mean():
    records = [
        ("random", "yes", "yes"),
        ("random", "no", "no"),
        ("popular", "yes", "no"),
        ("popular", "yes", "yes"),
    ]
    summary = summarize_pope(records)
    assert summary["categories"]["random"]["f1"] == 1.0
    assert summary["categories"]["popular"]["precision"] == 0.5
    assert summary["categories"]["popular"]["f1"] == pytest.approx(2 / 3)
    assert summary["overall"]["accuracy"] == 0.75
    assert summary["category_mean"]["f1"] == pytest.approx((1 + 2 / 3) / 2)


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


@pytest.fixture
def pope_files(tmp_path):
    annotation_dir = tmp_path / "coco"
    annotation_dir.mkdir()
    _write_jsonl(
        annotation_dir / "coco_pope_random.json",
        [
            {"question_id": 1, "image": "COCO_1.jpg", "text": "Is there a dog in the image?", "label": "yes"},
            {"question_id": 2, "image": "COCO_1.jpg", "text": "Is there a cat in the image?", "label": "no"},
        ],
    )
    _write_jsonl(
        annotation_dir / "coco_pope_adversarial.json",
        [{"question_id": 1, "image": "COCO_2.jpg", "text": "Is there a fork in the image?", "label": "no"}],
    )
    suffix = "\nAnswer the question using a single word or phrase."
    questions = [
        {
            "question_id": 10,
            "image": "COCO_1.jpg",
            "text": "Is there a dog in the image?" + suffix,
            "category": "random",
        },
        {
            "question_id": 11,
            "image": "COCO_2.jpg",
            "text": "Is there a fork in the image?" + suffix,
            "category": "adversarial",
        },
        {
            "question_id": 12,
            "image": "COCO_1.jpg",
            "text": "Is there a cat in the image?" + suffix,
            "category": "random",
        },
    ]
    return annotation_dir, questions


def test_score_pope_pairs_questions_with_annotations_per_category(pope_files):
    annotation_dir, questions = pope_files
    result = score_pope(
        {10: "Yes", 11: "Yes, a fork.", 12: "No"}, questions, read_pope_annotations(annotation_dir)
    )
    assert result["categories"]["random"]["accuracy"] == 1.0
    assert result["categories"]["adversarial"]["fp"] == 1
    assert result["overall"]["accuracy"] == pytest.approx(2 / 3)
    assert result["num_unanswered"] == 0


def test_score_pope_refuses_missing_answers_and_misaligned_files(pope_files):
    annotation_dir, questions = pope_files
    annotations = read_pope_annotations(annotation_dir)
    with pytest.raises(ValueError, match="1 of 3 questions have no answer"):
        score_pope({10: "Yes", 11: "No"}, questions, annotations)
    partial = score_pope({10: "Yes", 11: "No"}, questions, annotations, allow_missing=True)
    assert partial["num_unanswered"] == 1 and partial["overall"]["num_questions"] == 2
    swapped = [questions[2], questions[1], questions[0]]  # random questions out of annotation order
    with pytest.raises(ValueError, match=r"coco_pope_random.json:1 .* does not line up"):
        score_pope({10: "Yes", 11: "No", 12: "No"}, swapped, annotations)


def test_bad_annotation_line_is_named(tmp_path):
    (tmp_path / "coco_pope_popular.json").write_text(
        '{"image": "a.jpg", "text": "Is there?", "label": "yes"}\n{"image": "b.jpg"}\n'
    )
    with pytest.raises(ValueError, match=r"coco_pope_popular.json:2: annotation lacks the field 'text'"):
        read_pope_annotations(tmp_path)
