import json

import pytest

from llava_vitsplit.eval.answer_files import (
    AnswerWriter,
    EvalFileError,
    get_chunk,
    iter_pending_questions,
    make_answer,
    merge_answer_files,
    read_answers,
    read_questions,
    split_list,
    write_answer,
)


def _questions(path, count):
    path.write_text(
        "".join(
            json.dumps({"question_id": i, "image": f"{i}.jpg", "text": f"q{i}"}) + "\n" for i in range(count)
        )
    )
    return path


def test_read_questions_names_the_bad_line(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text(
        '{"question_id": 1, "image": "a.jpg", "text": "q"}\n\n{"question_id": 2, "image": "b.jpg", "text": \n'
    )
    with pytest.raises(EvalFileError, match=r"questions.jsonl:3: not valid JSON"):
        read_questions(path)
    path.write_text('{"question_id": 1, "image": "a.jpg", "text": "q"}\n{"question_id": 2, "text": "q"}\n')
    with pytest.raises(EvalFileError, match=r"questions.jsonl:2: question lacks the fields \['image'\]"):
        read_questions(path)
    path.write_text(
        '{"question_id": 1, "image": "a.jpg", "text": "q"}\n{"question_id": 1, "image": "b.jpg", "text": "r"}\n'
    )
    with pytest.raises(EvalFileError, match=r":2: question_id 1 already used on line 1"):
        read_questions(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(EvalFileError, match=r":1: expected a JSON object, got list"):
        read_questions(path)


def test_chunking_follows_llava_ceil_division():
    items = list(range(10))
    assert [list(chunk) for chunk in split_list(items, 3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [list(get_chunk(items, 3, k)) for k in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    # 9 items in 4 chunks of ceil(9/4) = 3: only 3 chunks exist, the 4th is empty (LLaVA would crash).
    nine = list(range(9))
    assert [list(get_chunk(nine, 4, k)) for k in range(4)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], []]
    assert list(get_chunk([], 2, 1)) == []
    with pytest.raises(ValueError, match="chunk_idx"):
        get_chunk(items, 3, 3)
    with pytest.raises(ValueError, match="num_chunks"):
        split_list(items, 0)


def test_resume_drops_a_truncated_last_line_and_skips_answered(tmp_path):
    question_file = _questions(tmp_path / "q.jsonl", 5)
    answers_file = tmp_path / "out" / "answers.jsonl"
    with AnswerWriter(answers_file) as writer:
        for question in writer.pending(read_questions(question_file))[:3]:
            writer.write(
                make_answer(question["question_id"], question["text"], f"a{question['question_id']}", "m")
            )
    # Simulate a crash in the middle of writing the third answer.
    data = answers_file.read_bytes()
    answers_file.write_bytes(data[: len(data) - 25])
    with pytest.raises(EvalFileError, match="incomplete"):
        read_answers(answers_file)
    assert [q["question_id"] for q in iter_pending_questions(question_file, answers_file)] == [2, 3, 4]
    assert answers_file.read_bytes().endswith(b"\n")  # the partial line is gone
    with AnswerWriter(answers_file) as writer:
        assert writer.answered == {0, 1}
        for question in writer.pending(read_questions(question_file)):
            writer.write(
                make_answer(question["question_id"], question["text"], f"a{question['question_id']}", "m")
            )
        with pytest.raises(ValueError, match="already answered"):
            writer.write(make_answer(0, "q0", "again", "m"))
    answers = read_answers(answers_file)
    assert list(answers) == [0, 1, 2, 3, 4]
    assert answers[2]["text"] == "a2"
    assert set(answers[2]) == {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(
        json.dumps(make_answer(1, "p", "t", "m")) + "\n" + json.dumps(make_answer(2, "p", "u", "m"))
    )
    assert list(read_answers(path, repair=True)) == [1, 2]
    assert path.read_text().endswith("}\n")


def test_corrupt_middle_line_and_duplicates_are_errors(tmp_path):
    path = tmp_path / "answers.jsonl"
    path.write_text(
        '{"question_id": 1, "text": "a"}\n{"question_id": 2, "te\n{"question_id": 3, "text": "c"}\n'
    )
    with pytest.raises(EvalFileError, match=r"answers.jsonl:2: not valid JSON"):
        read_answers(path, repair=True)
    path.write_text('{"question_id": 1, "text": "a"}\n{"question_id": 1, "text": "b"}\n')
    with pytest.raises(EvalFileError, match="already answered on line 1"):
        read_answers(path)


def test_write_answer_requires_llava_fields(tmp_path):
    with open(tmp_path / "a.jsonl", "w") as handle:
        with pytest.raises(ValueError, match="lacks the fields"):
            write_answer(handle, {"question_id": 1, "text": "x"})


def test_chunks_cover_all_questions_and_merge(tmp_path):
    question_file = _questions(tmp_path / "q.jsonl", 7)
    chunk_files = []
    for chunk_idx in range(3):
        chunk_file = tmp_path / f"3_{chunk_idx}.jsonl"
        with AnswerWriter(chunk_file) as writer:
            for question in iter_pending_questions(question_file, chunk_file, 3, chunk_idx):
                writer.write(make_answer(question["question_id"], question["text"], "x", "m"))
        chunk_files.append(chunk_file)
    merged = tmp_path / "merge.jsonl"
    assert merge_answer_files(reversed(chunk_files), merged, question_file) == 7
    assert list(read_answers(merged)) == list(range(7))  # question order, whatever the chunk order
    with pytest.raises(EvalFileError, match="answered in both"):
        merge_answer_files(chunk_files + [chunk_files[0]], merged)
    with pytest.raises(EvalFileError, match=r"1 questions of .* have no answer, e.g. \[6\]"):  # chunks 3+3+1
        merge_answer_files(chunk_files[:2], merged, question_file)
