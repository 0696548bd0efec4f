"""End to end: a tiny trained checkpoint evaluated both ways, scores checked against hand computation.

The checkpoint is a tiny LlavaViTSplit model taught a few answers (some wrong on purpose, so no
metric is trivially 0 or 1). Then:

1. real lmms-eval, started as users start it (`python -m lmms_eval --model llava_vitsplit ...`,
   the model found through the package's entry point, the tasks through --include_path) on local
   POPE/VQAv2/MMBench files exported with `eval export-data`; the answers it logs per sample are
   scored by hand from the benchmarks' definitions and compared with the scores it reports;
2. LLaVA's way, `scripts/eval/{pope,vqav2,mmbench}.sh` on LLaVA-format files of the same questions;
   the answers they write are scored by hand and compared with their metrics and submission files.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pandas as pd
import pytest
import torch
from PIL import Image

from llava_vitsplit.eval.mmbench import build_llava_prompt, build_lmms_eval_prompt
from llava_vitsplit.eval.provenance import answers_folder_name
from llava_vitsplit.eval.vqav2 import normalize_for_submission

from .benchmark_data import (
    MMBENCH_ITEMS,
    POPE_ITEMS,
    POPE_SUFFIX,
    VQAV2_ITEMS,
    export_benchmarks,
    llava_pope_files,
    llava_vqav2_files,
)
from .entry_points import REPO_ROOT, write_dist_info
from .hand_scores import mmbench_by_hand, pope_by_hand, vqav2_by_hand
from .tiny_checkpoint import build_model, save_checkpoint, teach

pytestmark = pytest.mark.slow

TASKS = ["pope_local", "vqav2_val_local", "mmbench_en_dev_local"]
# What the model is taught: POPE right on 4 of 6 (one miss, one false alarm), VQAv2 "blue" where 8
# of 10 humans said "red" (scores 0.6), MMBench wrong on index 1 (key A).
POPE_TAUGHT = ["yes", "no", "no", "no", "yes", "yes"]
VQAV2_TAUGHT = ["two", "blue", "yes"]
MMBENCH_TAUGHT = ["B", "The answer is B", "C"]


def _image(color):
    return Image.new("RGB", (6, 4), color)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def checkpoint(work):
    torch.manual_seed(0)
    model, processor = build_model(work / "parts")
    examples = [
        (item["question"].strip() + POPE_SUFFIX, _image(item["color"]), answer)
        for item, answer in zip(POPE_ITEMS, POPE_TAUGHT)
    ]
    examples += [
        (item["question"] + POPE_SUFFIX, _image(item["color"]), answer)
        for item, answer in zip(VQAV2_ITEMS, VQAV2_TAUGHT)
    ]
    for build_prompt in (build_lmms_eval_prompt, build_llava_prompt):  # lmms-eval's and LLaVA's wording
        examples += [
            (build_prompt(item), _image(item["color"]), answer)
            for item, answer in zip(MMBENCH_ITEMS, MMBENCH_TAUGHT)
        ]
    teach(model, processor, examples, steps=40, lr=1e-2)
    return save_checkpoint(model, processor, work / "tiny-llava-vitsplit")


def _run(argv, cwd, env_extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **env_extra}
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{argv[:4]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def _pope_metrics_match(reported: dict, answers: list[str]):
    expected = pope_by_hand([item["answer"] for item in POPE_ITEMS], answers)
    for name, value in expected.items():
        assert reported[name] == pytest.approx(value), name


@pytest.fixture(autouse=True)
def _datasets_cache(work, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", work / "hf-cache")  # export-data, in-process


def test_lmms_eval_cli_scores_equal_hand_computation(checkpoint, work):
    include = work / "lmms" / "eval"
    shutil.copytree(REPO_ROOT / "eval", include, ignore=shutil.ignore_patterns("__pycache__", "data"))
    export_benchmarks(include / "data", work / "lmms" / "hub", POPE_ITEMS, VQAV2_ITEMS, MMBENCH_ITEMS)
    site = write_dist_info(work / "lmms" / "site")  # the package's entry points, as pip installs them
    output = work / "lmms" / "results"
    argv = [sys.executable, "-m", "lmms_eval", "--model", "llava_vitsplit"]
    argv += ["--model_args", f"pretrained={checkpoint},conv_template=vicuna_v1", "--device", "cpu"]
    argv += ["--tasks", ",".join(TASKS), "--include_path", str(include), "--batch_size", "4"]
    argv += ["--output_path", str(output), "--log_samples"]
    _run(argv, cwd=work / "lmms", env_extra={
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)]),
        "HF_DATASETS_CACHE": str(work / "lmms" / "hf-cache"),
    })  # fmt: skip

    (results_file,) = output.rglob("*_results.json")
    results = json.loads(results_file.read_text())["results"]
    answers = {}
    for task in TASKS:
        (samples_file,) = output.rglob(f"*_samples_{task}.jsonl")
        samples = sorted(
            (json.loads(line) for line in samples_file.read_text().splitlines()), key=lambda s: s["doc_id"]
        )
        answers[task] = [sample["filtered_resps"] for sample in samples]
    print("lmms-eval answers:", answers)

    pope = results["pope_local"]
    _pope_metrics_match(
        {name: pope[f"pope_{name},none"] for name in ("accuracy", "precision", "recall", "yes_ratio")}
        | {"f1": pope["pope_f1_score,none"]},
        answers["pope_local"],
    )
    assert results["vqav2_val_local"]["exact_match,none"] == pytest.approx(
        vqav2_by_hand(VQAV2_ITEMS, answers["vqav2_val_local"])
    )
    assert results["mmbench_en_dev_local"]["mmbench_accuracy,none"] == pytest.approx(
        mmbench_by_hand(MMBENCH_ITEMS, answers["mmbench_en_dev_local"])
    )
    # The taught answers came back (the scores above are of a model, not of noise).
    assert answers["mmbench_en_dev_local"][0] == "B" and answers["vqav2_val_local"][0] == "two"
    (sheet,) = output.rglob("mmbench_en_dev_local_results.xlsx")
    assert pd.read_excel(sheet)["prediction"].tolist() == answers["mmbench_en_dev_local"]


def _merged_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines()]


def test_llava_scripts_scores_equal_hand_computation(checkpoint, work):
    eval_dir = work / "llava" / "eval"
    llava_pope_files(eval_dir / "pope", POPE_ITEMS)
    llava_vqav2_files(eval_dir / "vqav2", VQAV2_ITEMS, "llava_vqav2_val")
    data = export_benchmarks(
        work / "llava" / "data", work / "llava" / "hub", POPE_ITEMS, VQAV2_ITEMS, MMBENCH_ITEMS
    )
    env = {
        "MODEL_PATH": str(checkpoint),
        "EVAL_DIR": str(eval_dir),
        "PYTHON": sys.executable,
        "BATCH_SIZE": "4",
        "CUDA_VISIBLE_DEVICES": "",  # CPU: one chunk
    }
    scripts = REPO_ROOT / "scripts" / "eval"
    run_name = answers_folder_name(checkpoint)  # the scripts' default CKPT
    assert run_name.startswith(f"{checkpoint.name}-")

    _run(["bash", str(scripts / "pope.sh")], cwd=work, env_extra=env)
    pope_answers = eval_dir / "pope" / "answers" / run_name
    metrics = json.loads((pope_answers / "metrics.json").read_text())
    _pope_metrics_match(metrics["overall"], _merged_texts(pope_answers / "merge.jsonl"))

    vqav2_env = {
        **env,
        "SPLIT": "llava_vqav2_val",
        "SUBMISSION_QUESTIONS": str(eval_dir / "vqav2" / "llava_vqav2_val.jsonl"),
        "ANNOTATION_FILE": str(data / "vqav2" / "validation.parquet"),
    }
    _run(["bash", str(scripts / "vqav2.sh")], cwd=work, env_extra=vqav2_env)
    vqav2_answers = _merged_texts(
        eval_dir / "vqav2" / "answers" / "llava_vqav2_val" / run_name / "merge.jsonl"
    )
    metrics = json.loads(
        (eval_dir / "vqav2" / "answers" / "llava_vqav2_val" / run_name / "metrics.json").read_text()
    )
    assert metrics["accuracy"] == pytest.approx(vqav2_by_hand(VQAV2_ITEMS, vqav2_answers))
    upload = json.loads(
        (eval_dir / "vqav2" / "answers_upload" / "llava_vqav2_val" / f"{run_name}.json").read_text()
    )
    assert upload == [
        {"question_id": item["question_id"], "answer": normalize_for_submission(text)}
        for item, text in zip(VQAV2_ITEMS, vqav2_answers)
    ]

    mmbench_env = {**env, "SPLIT": "dev", "QUESTION_FILE": str(data / "mmbench_en" / "dev.parquet")}
    _run(["bash", str(scripts / "mmbench.sh")], cwd=work, env_extra=mmbench_env)
    mmbench_dir = eval_dir / "mmbench"
    mmbench_answers = _merged_texts(mmbench_dir / "answers" / "dev" / run_name / "merge.jsonl")
    metrics = json.loads((mmbench_dir / "answers" / "dev" / run_name / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(mmbench_by_hand(MMBENCH_ITEMS, mmbench_answers))
    sheet = pd.read_excel(mmbench_dir / "answers_upload" / "dev" / f"{run_name}.xlsx")
    assert sheet["index"].tolist() == [0, 1, 2] and sheet["prediction"].tolist() == mmbench_answers
    print(
        "LLaVA-script answers:", _merged_texts(pope_answers / "merge.jsonl"), vqav2_answers, mmbench_answers
    )
