"""`llava-vitsplit eval answer` on a tiny checkpoint: LLaVA's answer files, batching, chunks,
resuming, and errors that name the bad line, file and question."""

import json

import pytest

from llava_vitsplit.cli import main
from llava_vitsplit.eval.answer_files import EvalFileError, read_answers

from .benchmark_data import MMBENCH_ITEMS, POPE_ITEMS, export_benchmark, llava_pope_files

ANSWER_FIELDS = {"question_id", "prompt", "text", "answer_id", "model_id", "metadata", "writer"}


@pytest.fixture(scope="module")
def pope_dir(tmp_path_factory):
    return llava_pope_files(tmp_path_factory.mktemp("pope"), POPE_ITEMS)


def _answer(checkpoint, question_file, answers_file, *extra, image_folder=None):
    argv = ["eval", "answer", "--model-path", str(checkpoint), "--question-file", str(question_file)]
    argv += ["--answers-file", str(answers_file), "--device", "cpu", "--max-new-tokens", "4", *extra]
    if image_folder is not None:
        argv += ["--image-folder", str(image_folder)]
    return main(argv)


def _texts(path):
    return {qid: record["text"] for qid, record in read_answers(path).items()}


def test_answers_every_question_in_llava_format(tiny_checkpoint, pope_dir, tmp_path):
    questions = [json.loads(line) for line in (pope_dir / "llava_pope_test.jsonl").read_text().splitlines()]
    answers_file = tmp_path / "answers" / "tiny.jsonl"
    assert (
        _answer(
            tiny_checkpoint,
            pope_dir / "llava_pope_test.jsonl",
            answers_file,
            "--batch-size",
            "4",
            image_folder=pope_dir / "val2014",
        )
        == 0
    )
    records = [json.loads(line) for line in answers_file.read_text().splitlines()]
    assert [record["question_id"] for record in records] == [q["question_id"] for q in questions]
    assert all(set(record) == ANSWER_FIELDS for record in records)
    assert [record["prompt"] for record in records] == [q["text"] for q in questions]
    assert {record["model_id"] for record in records} == {tiny_checkpoint.name}
    # Batches of 4 and of 1 give the same greedy answers.
    one_by_one = tmp_path / "one.jsonl"
    _answer(
        tiny_checkpoint,
        pope_dir / "llava_pope_test.jsonl",
        one_by_one,
        "--batch-size",
        "1",
        image_folder=pope_dir / "val2014",
    )
    assert _texts(one_by_one) == _texts(answers_file)


def test_chunks_merge_into_the_whole_run(tiny_checkpoint, pope_dir, tmp_path):
    question_file, images = pope_dir / "llava_pope_test.jsonl", pope_dir / "val2014"
    _answer(tiny_checkpoint, question_file, tmp_path / "whole.jsonl", image_folder=images)
    chunk_files = [tmp_path / f"4_{index}.jsonl" for index in range(4)]
    for index, chunk_file in enumerate(chunk_files):
        _answer(
            tiny_checkpoint,
            question_file,
            chunk_file,
            "--num-chunks",
            "4",
            "--chunk-idx",
            str(index),
            image_folder=images,
        )
    assert [len(read_answers(chunk_file)) for chunk_file in chunk_files] == [
        2,
        2,
        2,
        0,
    ]  # ceil(6 / 4) = 2 per chunk
    merged = tmp_path / "merge.jsonl"
    assert (
        main(
            [
                "eval",
                "merge-answers",
                *map(str, chunk_files),
                "--output-file",
                str(merged),
                "--question-file",
                str(question_file),
            ]
        )
        == 0
    )
    assert _texts(merged) == _texts(tmp_path / "whole.jsonl")


def test_an_interrupted_run_resumes_without_redoing_answers(tiny_checkpoint, pope_dir, tmp_path, capsys):
    question_file, images = pope_dir / "llava_pope_test.jsonl", pope_dir / "val2014"
    complete = tmp_path / "complete.jsonl"
    _answer(tiny_checkpoint, question_file, complete, image_folder=images)
    lines = complete.read_text().splitlines(keepends=True)
    interrupted = tmp_path / "interrupted.jsonl"
    interrupted.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2])  # killed mid-line
    _answer(tiny_checkpoint, question_file, interrupted, image_folder=images)
    assert "2 of 6 questions answered before; resuming" in capsys.readouterr().out
    resumed = interrupted.read_text().splitlines(keepends=True)
    assert resumed[:2] == lines[:2]  # kept as they were (same answer ids)
    assert all(line.endswith("\n") for line in resumed) and len(resumed) == 6
    assert _texts(interrupted) == _texts(complete)
    # A finished file: nothing to do, nothing written.
    before = interrupted.read_bytes()
    _answer(tiny_checkpoint, question_file, interrupted, image_folder=images)
    assert interrupted.read_bytes() == before


def test_a_finished_chunk_loads_no_model(pope_dir, tmp_path):
    from llava_vitsplit.eval.answer_files import make_answer, write_answer
    from llava_vitsplit.eval.model_vqa import answer_question_file

    question_file = pope_dir / "llava_pope_test.jsonl"
    answers_file = tmp_path / "answers.jsonl"
    with open(answers_file, "w") as handle:
        for line in question_file.read_text().splitlines():
            write_answer(handle, make_answer(json.loads(line)["question_id"], "p", "yes", "m"))

    def load_answerer():
        raise AssertionError("a finished chunk must not load the model")

    assert answer_question_file(load_answerer, question_file, answers_file, image_folder=pope_dir / "val2014") == 0


def test_a_missing_image_names_the_file_and_the_question(tiny_checkpoint, pope_dir, tmp_path):
    question_file = tmp_path / "questions.jsonl"
    question_file.write_text(
        json.dumps({"question_id": 7, "image": "COCO_val2014_000000000000.png", "text": "Is it red?"}) + "\n"
        + json.dumps({"question_id": 8, "image": "missing.png", "text": "Is it blue?"}) + "\n"
    )  # fmt: skip
    answers_file = tmp_path / "answers.jsonl"
    with pytest.raises(
        FileNotFoundError, match=r"image file not found: .*val2014/missing\.png \(question_id 8\)"
    ):
        _answer(tiny_checkpoint, question_file, answers_file, image_folder=pope_dir / "val2014")
    assert not answers_file.exists() or answers_file.read_text() == ""  # checked before any model work


def test_a_malformed_question_line_is_named(tiny_checkpoint, tmp_path):
    question_file = tmp_path / "questions.jsonl"
    question_file.write_text(
        '{"question_id": 1, "image": "a.png", "text": "?"}\n{"question_id": 2, "text": \n'
    )
    with pytest.raises(EvalFileError, match=r"questions\.jsonl:2: not valid JSON"):
        _answer(tiny_checkpoint, question_file, tmp_path / "answers.jsonl", image_folder=tmp_path)


def test_mmbench_table_is_answered_with_llavas_prompt(tiny_checkpoint, tmp_path):
    data_root = export_benchmark(tmp_path / "data", tmp_path / "hub", "mmbench", MMBENCH_ITEMS)
    answers_file = tmp_path / "mmbench.jsonl"
    _answer(tiny_checkpoint, data_root / "mmbench_en" / "dev.parquet", answers_file)
    records = read_answers(answers_file)
    assert list(records) == [0, 1, 2]
    assert records[1]["prompt"] == "Look at the centre.\nWhat colour is it?\nA. red\nB. blue"
    assert records[1]["metadata"] == {"options": ["red", "blue"], "option_char": ["A", "B"]}
