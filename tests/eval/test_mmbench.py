import base64
import io
import math

import pandas as pd
import pytest
from PIL import Image

from llava_vitsplit.eval.mmbench import (
    build_llava_prompt,
    build_lmms_eval_prompt,
    extract_option_letter,
    mmbench_accuracy,
    mmbench_row_image,
    read_mmbench_table,
    score_mmbench,
    write_mmbench_submission,
)

OPTIONS = {"A": "dog", "B": "cat", "C": "red", "D": "dark red"}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("B", "B"),
        ("b", "B"),  # a lone letter in any case
        ("B.", "B"),
        ("(C)", "C"),
        ("D. dark red", "D"),
        ("(A) dog", "A"),
        ("The answer is D.", "D"),
        ("Answer: C", "C"),
        ("The correct option is (B).", "B"),
        ("A cat is shown", "B"),  # "A" is the article here; the option text "cat" decides
        ("It is dark red", "D"),  # "red" is inside "dark red": the longer option wins
        ("I think B or C", None),  # two letters: undecidable
        ("E", None),  # not one of the options
        ("", None),
        ("Something else entirely", None),
    ],
)
def test_extract_option_letter(response, expected):
    assert extract_option_letter(response, OPTIONS) == expected


ROW = {
    "index": 3,
    "question": "What is shown?",
    "hint": "Look at the left.",
    "A": "dog",
    "B": "cat",
    "C": float("nan"),
    "D": "pig",
}


def test_llava_prompt_stops_at_the_first_empty_option():
    assert build_llava_prompt(ROW) == (
        "Look at the left.\nWhat is shown?\nA. dog\nB. cat\nAnswer with the option's letter from the given choices directly."
    )
    no_hint = {**ROW, "hint": "nan"}
    assert build_llava_prompt(no_hint, with_suffix=False) == "What is shown?\nA. dog\nB. cat"


def test_lmms_eval_prompt_layout():
    # lmms-eval skips empty options but keeps the later ones, and puts a blank line before the suffix.
    assert build_lmms_eval_prompt(ROW) == (
        "Look at the left. What is shown? There are several options:\nA. dog\nB. cat\nD. pig\n\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert build_lmms_eval_prompt({**ROW, "hint": None}, post_prompt=None).startswith(
        "What is shown? There are"
    )


def test_accuracy_plain_and_circular():
    plain = [
        {"index": 1, "answer": "A", "prediction": "A", "options": OPTIONS, "category": "x"},
        {"index": 2, "answer": "B", "prediction": "The answer is C", "options": OPTIONS, "category": "y"},
        {"index": 3, "answer": "C", "prediction": "no idea", "options": OPTIONS, "category": "y"},
    ]
    result = mmbench_accuracy(plain)
    assert result["accuracy"] == pytest.approx(1 / 3)
    assert result["per_category"] == {"x": 1.0, "y": 0.0}
    assert (result["num_unparsed"], result["circular"]) == (1, False)
    # Question 1 has a rotated copy (index 1_000_001) answered wrongly: CircularEval fails it.
    circular = plain + [
        {"index": 1_000_001, "answer": "B", "prediction": "A", "options": OPTIONS, "category": "x"}
    ]
    result = mmbench_accuracy(circular)
    assert result["accuracy"] == 0.0 and result["circular"] and result["num_rows"] == 4


def _png_base64(color):
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def mmbench_tsv(tmp_path):
    table = pd.DataFrame(
        {
            "index": [0, 1, 2],
            "question": ["Animal?", "Colour?", "Count?"],
            "hint": [float("nan"), "A hint", float("nan")],
            "A": ["dog", "red", "1"],
            "B": ["cat", "blue", "2"],
            "C": ["cow", float("nan"), "3"],
            "D": ["pig", float("nan"), "4"],
            "answer": ["B", "A", "D"],
            "category": ["animals", "colours", "counting"],
            "image": [_png_base64("red"), _png_base64("blue"), _png_base64("green")],
            "source": ["s"] * 3,
            "l2-category": ["p", "p", "r"],
            "comment": [float("nan")] * 3,
            "split": ["dev"] * 3,
        }
    )
    path = tmp_path / "mmbench_dev.tsv"
    table.to_csv(path, sep="\t", index=False)
    return path


def test_read_table_image_and_score(mmbench_tsv):
    table = read_mmbench_table(mmbench_tsv)
    assert "image" not in table.columns and table["index"].dtype == "int64"
    with_images = read_mmbench_table(mmbench_tsv, with_images=True)
    image = mmbench_row_image(with_images.iloc[1].to_dict())
    assert image.size == (4, 3) and image.getpixel((0, 0)) == (0, 0, 255)
    result = score_mmbench(table, {0: "B", 1: "A.", 2: "(C)"})
    assert result["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="1 of 3 MMBench questions have no answer"):
        score_mmbench(table, {0: "B", 1: "A"})
    assert score_mmbench(table, {0: "B", 1: "A"}, allow_missing=True)["num_unanswered"] == 1


def test_submission_spreadsheet(mmbench_tsv, tmp_path):
    table = read_mmbench_table(mmbench_tsv)
    path = write_mmbench_submission(
        table, {0: "B", 1: "The answer is A", 2: "C"}, tmp_path / "up" / "sub.xlsx"
    )
    written = pd.read_excel(path)
    assert list(written.columns) == [
        "index",
        "question",
        "A",
        "B",
        "C",
        "D",
        "answer",
        "prediction",
        "category",
        "l2-category",
        "split",
    ]
    assert written["prediction"].tolist() == ["B", "The answer is A", "C"]
    assert written["index"].tolist() == [0, 1, 2]
    assert math.isnan(written.loc[1, "C"])
    with pytest.raises(ValueError, match="unknown MMBench indices"):
        write_mmbench_submission(table, {0: "B", 1: "A", 2: "C", 9: "A"}, tmp_path / "x.xlsx")
