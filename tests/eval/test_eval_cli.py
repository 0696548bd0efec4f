import json

import pandas as pd
import pytest

from llava_vitsplit.cli import main
from llava_vitsplit.eval.answer_files import make_answer


def _jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_score_pope_command(tmp_path, capsys):
    annotation_dir = tmp_path / "coco"
    annotation_dir.mkdir()
    labels = ["yes", "no", "yes", "no"]
    _jsonl(
        annotation_dir / "coco_pope_random.json",
        [
            {"image": f"{i}.jpg", "text": f"Is there object {i}?", "label": label}
            for i, label in enumerate(labels)
        ],
    )
    questions = _jsonl(
        tmp_path / "questions.jsonl",
        [
            {
                "question_id": 100 + i,
                "image": f"{i}.jpg",
                "text": f"Is there object {i}?",
                "category": "random",
            }
            for i in range(4)
        ],
    )
    replies = ["Yes.", "No, there is not.", "No.", "Yes"]  # TP, TN, FN, FP
    results = _jsonl(
        tmp_path / "answers.jsonl", [make_answer(100 + i, "p", text, "m") for i, text in enumerate(replies)]
    )
    metrics_file = tmp_path / "metrics.json"
    argv = ["eval", "score-pope", "--annotation-dir", str(annotation_dir), "--question-file", str(questions)]
    assert main([*argv, "--result-file", str(results), "--metrics-file", str(metrics_file)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(metrics_file.read_text())
    random = printed["categories"]["random"]
    assert (random["tp"], random["tn"], random["fn"], random["fp"]) == (1, 1, 1, 1)
    assert random["accuracy"] == 0.5 and random["yes_ratio"] == 0.5


def test_score_vqav2_command_writes_submission_and_scores(tmp_path, capsys):
    questions = _jsonl(
        tmp_path / "test2015.jsonl",
        [{"question_id": qid, "image": "x.jpg", "text": "?"} for qid in (1, 2, 3)],
    )
    results = _jsonl(
        tmp_path / "answers.jsonl", [make_answer(1, "p", "Two", "m"), make_answer(2, "p", "yes", "m")]
    )
    submission = tmp_path / "upload.json"
    argv = [
        "eval",
        "score-vqav2",
        "--result-file",
        str(results),
        "--question-file",
        str(questions),
        "--output-file",
        str(submission),
    ]
    with pytest.raises(ValueError, match="1 of 3 questions have no answer"):
        main(argv)
    assert main([*argv, "--fill-missing"]) == 0
    assert json.loads(submission.read_text()) == [
        {"question_id": 1, "answer": "2"},
        {"question_id": 2, "answer": "yes"},
        {"question_id": 3, "answer": ""},
    ]
    assert json.loads(capsys.readouterr().out)["submission"]["blank"] == 1
    annotations = tmp_path / "val.json"
    humans = ["2"] * 2 + ["3"] * 8  # two matches: official accuracy 0.6
    annotations.write_text(
        json.dumps(
            {
                "annotations": [
                    {"question_id": 1, "answer_type": "number", "answers": [{"answer": a} for a in humans]},
                    {"question_id": 2, "answer_type": "yes/no", "answers": [{"answer": "yes"}] * 10},
                ]
            }
        )
    )
    assert (
        main(["eval", "score-vqav2", "--result-file", str(results), "--annotation-file", str(annotations)])
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] == pytest.approx(0.8)
    assert metrics["per_answer_type"] == {"number": pytest.approx(0.6), "yes/no": 1.0}
    with pytest.raises(SystemExit, match="--output-file"):
        main(["eval", "score-vqav2", "--result-file", str(results)])


def test_score_mmbench_command(tmp_path, capsys):
    questions = tmp_path / "mmbench_dev.tsv"
    pd.DataFrame(
        {
            "index": [7, 8],
            "question": ["Animal?", "Colour?"],
            "hint": [None, "hint"],
            "A": ["dog", "red"],
            "B": ["cat", "blue"],
            "answer": ["B", "B"],
            "category": ["animals", "colours"],
            "image": ["", ""],
        }
    ).to_csv(questions, sep="\t", index=False)
    results = _jsonl(
        tmp_path / "answers.jsonl", [make_answer(7, "p", "B", "m"), make_answer(8, "p", "A. red", "m")]
    )
    output = tmp_path / "sub.xlsx"
    argv = ["eval", "score-mmbench", "--question-file", str(questions), "--result-file", str(results)]
    assert main([*argv, "--output-file", str(output)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] == 0.5 and metrics["per_category"] == {"animals": 1.0, "colours": 0.0}
    assert pd.read_excel(output)["prediction"].tolist() == ["B", "A. red"]


def test_merge_answers_command(tmp_path, capsys):
    questions = _jsonl(
        tmp_path / "q.jsonl", [{"question_id": i, "image": "x.jpg", "text": "?"} for i in range(3)]
    )
    first = _jsonl(tmp_path / "2_0.jsonl", [make_answer(0, "p", "a", "m"), make_answer(1, "p", "b", "m")])
    second = _jsonl(tmp_path / "2_1.jsonl", [make_answer(2, "p", "c", "m")])
    merged = tmp_path / "merge.jsonl"
    assert (
        main(
            [
                "eval",
                "merge-answers",
                str(second),
                str(first),
                "--output-file",
                str(merged),
                "--question-file",
                str(questions),
            ]
        )
        == 0
    )
    assert [json.loads(line)["text"] for line in merged.read_text().splitlines()] == ["a", "b", "c"]
    assert "merged 3 answers" in capsys.readouterr().out
