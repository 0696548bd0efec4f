"""Answers say what wrote them: resuming or merging answers of another model or other settings is
refused with what differs, and the scripts' answers folders of two models cannot collide."""

import json
import shutil

import pytest

from llava_vitsplit.cli import main
from llava_vitsplit.eval.answer_files import read_answers
from llava_vitsplit.eval.provenance import MixedWritersError, answers_folder_name, model_fingerprint

from .benchmark_data import POPE_ITEMS, llava_pope_files


@pytest.fixture(scope="module")
def pope_dir(tmp_path_factory):
    return llava_pope_files(tmp_path_factory.mktemp("pope"), POPE_ITEMS)


@pytest.fixture(scope="module")
def other_checkpoint(tiny_checkpoint, tmp_path_factory):
    """Another training run's folder of the same name: same layout, other weights (one byte differs)."""
    other = tmp_path_factory.mktemp("other-run") / tiny_checkpoint.name
    shutil.copytree(tiny_checkpoint, other)
    weights = bytearray((other / "model.safetensors").read_bytes())
    weights[-3] ^= 0x01
    (other / "model.safetensors").write_bytes(bytes(weights))
    return other


def _answer(checkpoint, pope_dir, answers_file, *extra):
    return main([
        "eval", "answer", "--model-path", str(checkpoint), "--question-file", str(pope_dir / "llava_pope_test.jsonl"),
        "--image-folder", str(pope_dir / "val2014"), "--answers-file", str(answers_file), "--device", "cpu",
        "--max-new-tokens", "4", *extra,
    ])


def _half_done(tiny_checkpoint, pope_dir, tmp_path):
    answers_file = tmp_path / "answers.jsonl"
    _answer(tiny_checkpoint, pope_dir, answers_file, "--num-chunks", "2", "--chunk-idx", "0")
    # The first half: as if the run stopped there; the file now resumes into the whole question file.
    return answers_file


def test_every_answer_records_the_model_and_the_settings(tiny_checkpoint, pope_dir, tmp_path):
    answers_file = _half_done(tiny_checkpoint, pope_dir, tmp_path)
    writers = [record["writer"] for record in read_answers(answers_file).values()]
    assert writers and all(writer == writers[0] for writer in writers)
    assert writers[0]["model"] == {"name": str(tiny_checkpoint.resolve()), "fingerprint": model_fingerprint(tiny_checkpoint)}
    assert writers[0]["base"] is None
    assert writers[0]["generation"]["max_new_tokens"] == 4 and writers[0]["generation"]["conv_mode"] == "vicuna_v1"


def test_resuming_with_another_model_is_refused(tiny_checkpoint, other_checkpoint, pope_dir, tmp_path):
    answers_file = _half_done(tiny_checkpoint, pope_dir, tmp_path)
    before = answers_file.read_bytes()
    with pytest.raises(MixedWritersError, match=r"another model or other settings[\s\S]*model: .*vs .*other-run"):
        _answer(other_checkpoint, pope_dir, answers_file)
    assert answers_file.read_bytes() == before


def test_resuming_with_other_settings_is_refused(tiny_checkpoint, pope_dir, tmp_path):
    answers_file = _half_done(tiny_checkpoint, pope_dir, tmp_path)
    with pytest.raises(MixedWritersError, match=r"max_new_tokens: 4 vs 3"):
        _answer(tiny_checkpoint, pope_dir, answers_file, "--max-new-tokens", "3")
    with pytest.raises(MixedWritersError, match=r"conv_mode: 'vicuna_v1' vs 'v1'"):
        _answer(tiny_checkpoint, pope_dir, answers_file, "--conv-mode", "v1")


def test_resuming_answers_that_do_not_say_what_wrote_them_is_refused(tiny_checkpoint, pope_dir, tmp_path):
    answers_file = _half_done(tiny_checkpoint, pope_dir, tmp_path)
    records = [json.loads(line) for line in answers_file.read_text().splitlines()]
    answers_file.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "writer"}) + "\n" for r in records))
    with pytest.raises(MixedWritersError, match="does not say what wrote it"):
        _answer(tiny_checkpoint, pope_dir, answers_file)


def test_the_same_model_copied_elsewhere_resumes(tiny_checkpoint, pope_dir, tmp_path):
    answers_file = _half_done(tiny_checkpoint, pope_dir, tmp_path)
    copy = tmp_path / "copied" / "model"
    shutil.copytree(tiny_checkpoint, copy)
    assert _answer(copy, pope_dir, answers_file) == 0
    assert len(read_answers(answers_file)) == len(POPE_ITEMS)


def test_merge_refuses_chunks_of_two_models(tiny_checkpoint, other_checkpoint, pope_dir, tmp_path):
    first, second = tmp_path / "2_0.jsonl", tmp_path / "2_1.jsonl"
    _answer(tiny_checkpoint, pope_dir, first, "--num-chunks", "2", "--chunk-idx", "0")
    _answer(other_checkpoint, pope_dir, second, "--num-chunks", "2", "--chunk-idx", "1")
    merged = tmp_path / "merge.jsonl"
    with pytest.raises(MixedWritersError, match=r"2_0.jsonl .* and .*2_1.jsonl .* different models[\s\S]*model:"):
        main(["eval", "merge-answers", str(first), str(second), "--output-file", str(merged)])
    assert not merged.exists()


def test_answers_folder_names_of_two_runs_cannot_collide(tiny_checkpoint, other_checkpoint, tmp_path, capsys):
    assert tiny_checkpoint.name == other_checkpoint.name
    names = set()
    for folder in (tiny_checkpoint, other_checkpoint):
        assert main(["eval", "run-name", "--model-path", str(folder)]) == 0
        names.add(capsys.readouterr().out.strip())
    assert len(names) == 2 and all(name.startswith(f"{tiny_checkpoint.name}-") for name in names)
    copy = tmp_path / tiny_checkpoint.name
    shutil.copytree(tiny_checkpoint, copy)
    assert answers_folder_name(copy) == answers_folder_name(tiny_checkpoint)  # a copy keeps its answers
    assert answers_folder_name(copy, other_checkpoint) != answers_folder_name(copy)


def test_the_fingerprint_of_a_large_file_samples_it(tmp_path):
    """Past 2 MiB the weights are sampled: a retrained file (every block moved) differs, a copy does not."""
    import numpy as np

    folder, retrained, copied = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for path in (folder, retrained, copied):
        path.mkdir()
        (path / "config.json").write_text("{}")
    weights = np.random.default_rng(0).standard_normal(2_000_000).astype(np.float32)
    (folder / "model.safetensors").write_bytes(weights.tobytes())
    (copied / "model.safetensors").write_bytes(weights.tobytes())
    (retrained / "model.safetensors").write_bytes((weights * 1.001).tobytes())
    assert model_fingerprint(folder) == model_fingerprint(copied) != model_fingerprint(retrained)
