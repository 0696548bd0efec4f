"""lmms-eval's OpenAI-compatible chat model (`--model openai`) against `llava-vitsplit serve` gives
the same POPE answers and scores as lmms-eval's `--model llava_vitsplit` on the same checkpoint.

The checkpoint is the evaluation tests' tiny model taught the local POPE questions, some answers
wrong on purpose (so the scores are neither 0 nor 1); both runs decode greedily (the task's
temperature 0). The task is our local `pope_local`, read from files exported with
`eval export-data`; the images travel to the server as PNG data URLs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import datasets
import pytest
import torch
from PIL import Image

from tests.eval.benchmark_data import POPE_ITEMS, POPE_SUFFIX, export_benchmark
from tests.eval.entry_points import REPO_ROOT, write_dist_info
from tests.eval.tiny_checkpoint import build_model, save_checkpoint, teach

from .conftest import batch_rows, running_api_server

pytestmark = pytest.mark.slow

POPE_TAUGHT = ["yes", "no", "no", "no", "yes", "yes"]  # 4 of 6 right: one miss, one false alarm
SERVED_NAME = "tiny-pope"
METRICS = ("pope_accuracy,none", "pope_precision,none", "pope_recall,none", "pope_f1_score,none",
           "pope_yes_ratio,none")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmms-openai")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf-cache")
        include = root / "eval"
        shutil.copytree(REPO_ROOT / "eval", include, ignore=shutil.ignore_patterns("__pycache__", "data"))
        export_benchmark(include / "data", root / "hub", "pope", POPE_ITEMS)
    torch.manual_seed(0)
    model, processor = build_model(root / "parts")
    examples = [(item["question"].strip() + POPE_SUFFIX, Image.new("RGB", (6, 4), item["color"]), answer)
                for item, answer in zip(POPE_ITEMS, POPE_TAUGHT)]
    teach(model, processor, examples, steps=40, lr=1e-2)
    return root, save_checkpoint(model, processor, root / "tiny-pope")


def lmms_eval(root, name: str, model: str, model_args: str) -> tuple[dict, list[str]]:
    output = root / name
    argv = [sys.executable, "-m", "lmms_eval", "--model", model, "--model_args", model_args,
            "--tasks", "pope_local", "--include_path", str(root / "eval"), "--batch_size", "4",
            "--output_path", str(output), "--log_samples"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(root / "hf-cache"),
           "PYTHONPATH": os.pathsep.join([str(write_dist_info(root / "site")), str(REPO_ROOT)])}
    env.pop("OPENAI_API_KEY", None)
    result = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{model}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    (results_file,) = output.rglob("*_results.json")
    (samples_file,) = output.rglob("*_samples_pope_local.jsonl")
    samples = sorted((json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"])
    return json.loads(results_file.read_text())["results"]["pope_local"], [s["filtered_resps"] for s in samples]


def test_openai_model_through_the_server_scores_as_the_local_model(work, tmp_path):
    root, checkpoint = work
    local, local_answers = lmms_eval(root, "local", "llava_vitsplit",
                                     f"pretrained={checkpoint},conv_template=vicuna_v1,device=cpu")
    flags = ["--served-model-name", SERVED_NAME, "--conv-mode", "vicuna_v1", "--api-key", "eval-key"]
    with running_api_server(checkpoint, tmp_path / "server.log", flags) as server:
        served, served_answers = lmms_eval(
            root, "served", "openai",
            f"model={SERVED_NAME},base_url={server.url}v1,api_key=eval-key,timeout=300,max_retries=1,num_concurrent=4",
        )
        batches = server.wait_for_log("batch of", until=lambda lines: batch_rows(lines) >= len(POPE_ITEMS))
    print("answers:", local_answers, served_answers)
    assert served_answers == local_answers
    assert {name: served[name] for name in METRICS} == {name: local[name] for name in METRICS}
    assert 0 < local["pope_accuracy,none"] < 1  # a taught model, not noise: the comparison means something
    assert batch_rows(batches) == len(POPE_ITEMS)
