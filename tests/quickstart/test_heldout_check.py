"""The quick start's last step: a saved model answers the held-out scene questions and gets scored."""

from __future__ import annotations

import json

from llava_vitsplit.cli import main
from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration
from llava_vitsplit.quickstart.scene_dataset import SceneDataConfig, make_scenes


def test_heldout_check_answers_every_question_and_prints_the_table(tiny_parts, tmp_path, capsys):
    data = make_scenes(tmp_path / "scenes", SceneDataConfig(num_train=2, num_heldout=2, image_size=32), progress=False)
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        tiny_parts["llm"], tiny_parts["tower"], projector_type="mlp2x_gelu"
    )
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    output = tmp_path / "results.json"
    assert main(["heldout-check", "--model-path", str(tmp_path / "model"), "--data", str(data.out_dir),
                 "--max-new-tokens", "3", "--output", str(output), "--quiet"]) == 0
    printed = capsys.readouterr().out
    results = json.loads(output.read_text())
    questions = json.loads(data.heldout_json.read_text())["questions"]
    assert set(results["predictions"]) == {q["question_id"] for q in questions}
    assert "overall" in printed and "chance" in printed
    assert results["scores"][-1]["type"] == "overall" and results["scores"][-1]["total"] == len(questions)
