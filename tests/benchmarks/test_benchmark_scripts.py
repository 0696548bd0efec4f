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
