import json

import pytest

from llava_vitsplit.eval.vqav2 import (
    normalize_answer,
    normalize_for_submission,
    read_vqav2_annotations,
    score_vqav2,
    vqa_accuracy,
    vqa_accuracy_simple,
    write_vqav2_submission,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a dog.", "dog"),  # article dropped, final period dropped
        ("Yes!", "yes"),  # "!" becomes a space, then lowercased and split
        ("dont", "don't"),  # contraction restored
        ("Two", "2"),
        ("none", "0"),
        ("3.5", "3.5"),  # a decimal point stays
        ("1,000", "1000"),  # digit-comma-digit: commas removed outright
        ("red,blue", "red blue"),  # unspaced comma becomes a space
        ("red, blue", "red blue"),  # spaced comma is removed
        ("The  Man's\that", "man's hat"),
        ("yall'll", "y'all'll"),
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_submission_normalisation_also_drops_question_marks_and_splits_possessives():
    assert normalize_for_submission("The man's hat?") == "man 's hat"
    assert normalize_answer("The man's hat?") == "man's hat"


# Worked by hand. Humans: "two", "2", "2" (all "2" after normalisation) and seven "3".
HUMANS = ["two", "2", "2", "3", "3", "3", "3", "3", "3", "3"]


def test_official_accuracy_averages_leave_one_out_subsets():
    # Leaving out one of the three "2"s leaves 2 matches -> 2/3 (3 subsets);
    # leaving out a "3" leaves 3 matches -> 1 (7 subsets). Mean = (3 * 2/3 + 7) / 10 = 0.9.
    assert vqa_accuracy("2", HUMANS) == pytest.approx(0.9)
    assert vqa_accuracy("Two.", HUMANS) == pytest.approx(0.9)


def test_simple_accuracy_is_min_matches_over_three():
    assert vqa_accuracy_simple("2", HUMANS) == 1.0
    # Two matches: simple 2/3; official: 2 subsets with 1 match (1/3) and 8 with 2 (2/3) -> 0.6.
    two_matches = ["two", "2"] + ["3"] * 8
    assert vqa_accuracy_simple("2", two_matches) == pytest.approx(2 / 3)
    assert vqa_accuracy("2", two_matches) == pytest.approx(0.6)
    assert vqa_accuracy("4", HUMANS) == 0.0
    assert vqa_accuracy("3", HUMANS) == 1.0


def test_score_from_official_annotation_json(tmp_path):
    annotation_file = tmp_path / "val_annotations.json"
    annotations = [
        {
            "question_id": 1,
            "answer_type": "number",
            "answers": [{"answer": a, "answer_id": i} for i, a in enumerate(HUMANS)],
        },
        {
            "question_id": 2,
            "answer_type": "yes/no",
            "answers": [{"answer": "yes", "answer_id": i} for i in range(10)],
        },
    ]
    annotation_file.write_text(json.dumps({"annotations": annotations}))
    loaded = read_vqav2_annotations(annotation_file)
    result = score_vqav2({1: "2", 2: "No"}, loaded)
    assert result["accuracy"] == pytest.approx(0.45)
    assert result["accuracy_simple"] == pytest.approx(0.5)
    assert result["per_answer_type"] == {"number": pytest.approx(0.9), "yes/no": 0.0}
    with pytest.raises(ValueError, match="no annotation"):
        score_vqav2({3: "yes"}, loaded)


def test_submission_file_order_normalisation_and_missing_answers(tmp_path):
    path = tmp_path / "upload" / "test-dev.json"
    with pytest.raises(ValueError, match="1 of 3 questions have no answer"):
        write_vqav2_submission({5: "Two", 7: "yes"}, [7, 5, 9], path)
    summary = write_vqav2_submission({5: "Two", 7: "Yes."}, [7, 5, 9], path, fill_missing=True)
    assert json.loads(path.read_text()) == [
        {"question_id": 7, "answer": "yes"},
        {"question_id": 5, "answer": "2"},
        {"question_id": 9, "answer": ""},
    ]
    assert (summary.num_questions, summary.num_answered, summary.num_blank) == (3, 2, 1)
    with pytest.raises(ValueError, match="outside the submission split"):
        write_vqav2_submission({4: "x"}, [7], path, fill_missing=True)
