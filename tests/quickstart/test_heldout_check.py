"""The quick start's last step: a saved model answers the held-out scene questions and gets scored."""

from __future__ import annotations

import json

import pytest

from llava_vitsplit.cli import main
from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration
from llava_vitsplit.quickstart.scene_dataset import SceneDataConfig, make_scenes


def save_tiny_model(tiny_parts, folder):
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        tiny_parts["llm"], tiny_parts["tower"], projector_type="mlp2x_gelu"
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def test_heldout_check_answers_every_question_and_prints_the_table(tiny_parts, tmp_path, capsys):
    data = make_scenes(tmp_path / "scenes", SceneDataConfig(num_train=2, num_heldout=2, image_size=32), progress=False)
    save_tiny_model(tiny_parts, tmp_path / "model")
    output = tmp_path / "results.json"
    assert main(["heldout-check", "--model-path", str(tmp_path / "model"), "--data", str(data.out_dir),
                 "--max-new-tokens", "3", "--output", str(output), "--quiet"]) == 0
    printed = capsys.readouterr().out
    results = json.loads(output.read_text())
    questions = json.loads(data.heldout_json.read_text())["questions"]
    assert set(results["predictions"]) == {q["question_id"] for q in questions}
    assert "overall" in printed and "chance" in printed
    assert results["scores"][-1]["type"] == "overall" and results["scores"][-1]["total"] == len(questions)


def test_heldout_check_answers_in_bfloat16_and_names_a_bad_dtype(tiny_parts, tmp_path, capsys):
    data = make_scenes(tmp_path / "scenes", SceneDataConfig(num_train=1, num_heldout=1, image_size=32), progress=False)
    save_tiny_model(tiny_parts, tmp_path / "model")
    common = ["heldout-check", "--model-path", str(tmp_path / "model"), "--data", str(data.out_dir),
              "--max-new-tokens", "2", "--quiet"]
    output = tmp_path / "bf16.json"
    assert main([*common, "--dtype", "bfloat16", "--output", str(output)]) == 0
    assert len(json.loads(output.read_text())["predictions"]) == len(json.loads(data.heldout_json.read_text())["questions"])
    with pytest.raises(SystemExit, match="--dtype: unknown dtype 'half-ish'"):
        main([*common, "--dtype", "half-ish", "--output", str(tmp_path / "never.json")])
    assert not (tmp_path / "never.json").exists()
