"""The benchmark scripts run end to end on tiny shapes and print the tables they promise."""

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16"])
def test_deform_conv_benchmark_prints_ratios_to_the_plain_conv(bf16, monkeypatch, capsys):
    arguments = ["--channels", "8", "--size", "9", "--rounds", "1", *(["--bf16"] if bf16 else [])]
    monkeypatch.setattr(sys, "argv", ["deform_conv.py", *arguments])
    runpy.run_path(str(SCRIPTS / "deform_conv.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert ("bf16 autocast" if bf16 else "float32") in out
    ratios = dict(re.findall(r"^\| (.+?) \| [0-9.]+ \| ([0-9.]+)x \|$", out, flags=re.M))
    assert set(ratios) == {"plain 3x3 conv", "ours (bilinear sampling + matmul)", "torchvision deform_conv2d"}
    assert float(ratios["plain 3x3 conv"]) == 1.0


@pytest.mark.slow
def test_split_training_step_benchmark_runs_in_bf16():
    out = _run("split_training_step.py", "--sizes", "s", "--image-size", "56", "--steps", "1", "--warmup", "0", "--bf16")
    assert "bf16 autocast" in out
    rows = re.findall(r"^\| S \| (full|vitsplit|ideal|linear) \|.*\| ([0-9.]+) \| [0-9]+ \| ([0-9.]+) \|$", out, flags=re.M)
    assert [variant for variant, _, _ in rows] == ["full", "vitsplit", "ideal", "linear"]
    allocated_ratio, rss_ratio = rows[0][1:]  # full fine-tuning against itself
    assert float(allocated_ratio) == float(rss_ratio) == 1.0
    assert re.search(r"size S: ViT-Split step = [0-9.]+x the ideal step", out)


def test_projector_probe_cosines_tell_distinct_objects_from_blurred_ones():
    import torch

    token_cosines = runpy.run_path(str(SCRIPTS / "projector_probe.py"))["token_cosines"]
    # Two objects on a 4x4 grid, each covering one patch: (row 0, col 0) and (row 2, col 3).
    scene = {"scene": {"objects": [{"x": 0.125, "y": 0.125, "size": 0.2}, {"x": 0.875, "y": 0.625, "size": 0.2}]}}
    background, red, blue = torch.eye(3)
    distinct = background.repeat(4, 4, 1)
    distinct[0, 0], distinct[2, 3] = red, blue
    assert token_cosines(distinct[None], [scene]) == pytest.approx((0.0, 0.0))
    # A blur that adds the background to each object token brings both cosines up to 1/sqrt(2) and 1/2.
    blurred = distinct.clone()
    blurred[0, 0], blurred[2, 3] = red + background, blue + background
    assert token_cosines(blurred[None], [scene]) == pytest.approx((2**-0.5, 0.5))


def test_projector_probe_variance_share_is_what_the_class_means_explain():
    import torch

    variance_share = runpy.run_path(str(SCRIPTS / "projector_probe.py"))["variance_share"]
    labels = torch.tensor([0, 0, 1, 1])
    means = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert variance_share(means[labels], labels) == pytest.approx(1.0)
    # Noise along the second axis that both classes share halves it: between 2 x 2 x 1, total 4 + 4.
    noise = torch.tensor([[0.0, 1.0], [0.0, -1.0], [0.0, 1.0], [0.0, -1.0]])
    assert variance_share(means[labels] + noise, labels) == pytest.approx(0.5)
    assert variance_share(noise, labels) == pytest.approx(0.0)


def _gpu_report(tmp_path, **env) -> str:
    report = tmp_path / "report.md"
    subprocess.run(["bash", str(SCRIPTS / "gpu_report.sh"), str(report)], check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1", "SMALL": "1", "PYTHON": sys.executable, **env})
    return report.read_text()


@pytest.mark.slow
def test_gpu_report_dry_run_writes_every_section_with_its_table(tmp_path):
    report = _gpu_report(tmp_path)
    sections = report.split("\n## ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "ViT-Split training step against full fine-tuning (bf16)", "Deformable convolution, float32",
        "Deformable convolution, bf16 autocast", "LLaVA stage-1 and stage-2 steps",
    ]
    assert "| S | vitsplit |" in sections[0] and "| ours (bilinear sampling + matmul) |" in sections[1]
    assert "2     vitsplit (official)" in sections[3]
    assert "failed" not in report and "ran out" not in report


def test_gpu_report_notes_a_section_that_runs_out_and_goes_on(tmp_path):
    report = _gpu_report(tmp_path, SECTION_LIMIT="1")
    assert report.count("ran out of its 1 s") == 4  # every section is written, none stops the report


def test_answer_probe_asks_about_every_object_in_training_wordings():
    from llava_vitsplit.quickstart.scenes import sample_scene, scene_rng

    attribute_questions = runpy.run_path(str(SCRIPTS / "answer_probe.py"))["attribute_questions"]
    records = [
        {"split": split, "image": f"{split}_{i}.png", "scene": sample_scene(scene_rng(0, split, i), split).to_dict()}
        for split in ("train", "heldout")
        for i in range(6)
    ]
    for attribute, other in (("colour", "shape"), ("shape", "colour")):
        questions = attribute_questions(records, attribute)
        objects = [(r, o) for r in records for o in r["scene"]["objects"]]
        assert len(questions) == len(objects)
        for question, (record, obj) in zip(questions, objects, strict=True):
            assert (question["split"], question["image"]) == (record["split"], record["image"])
            assert question["answer"] == obj[attribute].capitalize()
            assert obj[other] in question["question"] and obj[attribute] not in question["question"].lower()


def test_answer_probe_reads_the_last_prompt_token_whatever_the_left_padding():
    import torch
    from transformers import LlamaConfig

    from llava_vitsplit.model import (
        LlavaViTSplitConfig,
        LlavaViTSplitForConditionalGeneration,
        LlavaViTSplitProcessor,
    )
    from llava_vitsplit.model.tokenizer import prepare_tokenizer
    from tests.model.tiny import GRID_TOKENS, TEXT_CONFIG, random_image, tiny_tokenizer, tiny_tower

    answer_states = runpy.run_path(str(SCRIPTS / "answer_probe.py"))["answer_states"]
    tokenizer = tiny_tokenizer()
    prepare_tokenizer(tokenizer)
    tower, image_processor = tiny_tower("dinov2")
    processor = LlavaViTSplitProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8)
    config = LlavaViTSplitConfig(
        vision_config=tower.config,
        text_config=LlamaConfig(**{**TEXT_CONFIG, "vocab_size": len(tokenizer)}),
        image_token_id=tokenizer.convert_tokens_to_ids(processor.image_token),
        image_seq_length=GRID_TOKENS,
    )
    model = LlavaViTSplitForConditionalGeneration(config).eval()
    requests = [
        (random_image(seed=0), f"{processor.image_token}\nab"),
        (random_image(seed=1), f"{processor.image_token}\nabc abc abc"),
    ]
    together, choices = answer_states(model, processor, requests, [0, 2], candidate_ids=[5, 6, 7], batch_size=2)
    assert together[2].shape == (2, model.config.text_config.hidden_size) and choices.shape == (2,)
    for index, request in enumerate(requests):
        alone, _ = answer_states(model, processor, [request], [0, 2], candidate_ids=[5, 6, 7])
        for layer in (0, 2):
            torch.testing.assert_close(together[layer][index], alone[layer][0], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(together[2][0], together[2][1])
