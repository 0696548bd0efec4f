"""No command writes over one of its inputs, nor over an existing file unless given --overwrite.
Each refusal happens before any model is loaded (the checkpoints below do not exist)."""

from __future__ import annotations

import json

import pytest

from llava_vitsplit.cli import main
from llava_vitsplit.eval.answer_files import make_answer


def _photo(tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG the user's only copy")
    return photo


def test_dense_predict_never_writes_over_its_input(tmp_path):
    photo = _photo(tmp_path)
    argv = ["dense", "predict", str(photo), "--checkpoint", f"seg={tmp_path / 'no-part'}"]
    for extra in ([], ["--overwrite"]):
        with pytest.raises(FileExistsError, match=r"--out .*photo.png is also an input of this command"):
            main([*argv, "--out", str(photo), *extra])
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    with pytest.raises(FileExistsError, match="is also an input"):
        main([*argv, "--out", str(link), "--overwrite"])
    raw = tmp_path / "photo_seg.png"  # --save-raw DIR writes DIR/<image stem>_<task>.png
    raw.write_bytes(b"an earlier raw mask")
    with pytest.raises(FileExistsError, match=r"--save-raw \(seg\) .*photo_seg.png already exists"):
        main([*argv, "--out", str(tmp_path / "out.png"), "--save-raw", str(tmp_path)])
    assert photo.read_bytes() == b"\x89PNG the user's only copy"


def test_dense_predict_refuses_an_existing_output_without_overwrite(tmp_path):
    photo, out = _photo(tmp_path), tmp_path / "out.png"
    out.write_bytes(b"last week's figure")
    argv = ["dense", "predict", str(photo), "--out", str(out), "--checkpoint", f"seg={tmp_path / 'no-part'}"]
    with pytest.raises(FileExistsError, match=r"--out .*out.png already exists: pass --overwrite"):
        main(argv)
    with pytest.raises(Exception) as went_on:  # with --overwrite it goes on, to the (missing) part
        main([*argv, "--overwrite"])
    assert not isinstance(went_on.value, FileExistsError)
    assert out.read_bytes() == b"last week's figure"


def test_dense_eval_refuses_an_existing_metrics_file(tmp_path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{}")
    with pytest.raises(FileExistsError, match="--output .*metrics.json already exists"):
        main(["dense", "eval", "--checkpoint", str(tmp_path / "no-part"), "--data-root", str(tmp_path),
              "--output", str(metrics)])


def _answers(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"question_id": i, "image": "x.jpg", "text": "?"}) + "\n" for i in range(2)))
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(make_answer(i, "p", "yes", "m")) + "\n" for i in range(2)))
    return questions, answers


def test_merge_answers_never_writes_over_a_chunk_and_asks_before_replacing(tmp_path):
    questions, answers = _answers(tmp_path)
    before = answers.read_bytes()
    with pytest.raises(FileExistsError, match="is also an input"):
        main(["eval", "merge-answers", str(answers), "--output-file", str(answers), "--overwrite"])
    assert answers.read_bytes() == before
    merged = tmp_path / "merge.jsonl"
    argv = ["eval", "merge-answers", str(answers), "--output-file", str(merged), "--question-file", str(questions)]
    assert main(argv) == 0
    with pytest.raises(FileExistsError, match="already exists: pass --overwrite"):
        main(argv)
    assert main([*argv, "--overwrite"]) == 0


def test_scoring_refuses_to_replace_metrics_or_submissions(tmp_path):
    questions, answers = _answers(tmp_path)
    submission = tmp_path / "upload.json"
    submission.write_text("[]")
    argv = ["eval", "score-vqav2", "--result-file", str(answers), "--question-file", str(questions),
            "--output-file", str(submission)]
    with pytest.raises(FileExistsError, match="--output-file .*upload.json already exists"):
        main(argv)
    assert submission.read_text() == "[]"
    with pytest.raises(FileExistsError, match="is also an input"):
        main([*argv[:-1], str(answers), "--overwrite"])
    assert main([*argv, "--overwrite"]) == 0
    assert len(json.loads(submission.read_text())) == 2


def test_heldout_check_refuses_to_replace_earlier_results(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "heldout_results.json").write_text("{}")
    with pytest.raises(FileExistsError, match="heldout_results.json already exists"):
        main(["heldout-check", "--model-path", str(model), "--data", str(tmp_path)])


def test_merge_lora_refuses_a_folder_with_files_or_one_of_its_inputs(tmp_path):
    lora, merged = tmp_path / "lora", tmp_path / "merged"
    lora.mkdir()
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    with pytest.raises(FileExistsError, match="merged already holds files: pass --overwrite"):
        main(["merge-lora", str(lora), str(merged)])
    with pytest.raises(FileExistsError, match="overlaps an input"):
        main(["merge-lora", str(lora), str(lora / "merged"), "--overwrite"])
    with pytest.raises(FileNotFoundError, match="holds no adapter_config.json"):  # --overwrite goes on
        main(["merge-lora", str(lora), str(merged), "--overwrite"])
    assert (merged / "config.json").read_text() == "{}"


def test_export_data_refuses_to_replace_an_exported_benchmark(tmp_path):
    from llava_vitsplit.eval.local_data import export_path

    exported = export_path("pope", tmp_path)
    exported.parent.mkdir(parents=True)
    exported.write_bytes(b"earlier export")
    with pytest.raises(FileExistsError, match=r"pope.*already exists: pass --overwrite"):
        main(["eval", "export-data", "--benchmark", "pope", "--from", str(tmp_path / "hub"), "--out", str(tmp_path)])
    assert exported.read_bytes() == b"earlier export"


def test_eval_answer_never_appends_to_its_question_file(tmp_path):
    questions, _ = _answers(tmp_path)
    before = questions.read_bytes()
    with pytest.raises(FileExistsError, match="--answers-file .*q.jsonl is also an input"):
        main(["eval", "answer", "--model-path", str(tmp_path / "no-model"), "--question-file", str(questions),
              "--answers-file", str(questions), "--device", "cpu"])
    assert questions.read_bytes() == before
