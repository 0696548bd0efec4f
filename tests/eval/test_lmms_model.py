"""The lmms-eval model `llava_vitsplit`: registration, generation and log-likelihood requests,
and scores through lmms-eval's evaluator on the local tasks (random tiny checkpoint)."""

import shutil
from pathlib import Path

import datasets
import pytest
from lmms_eval.api.instance import Instance
from lmms_eval.evaluator import simple_evaluate
from lmms_eval.models.registry_v2 import ModelRegistryV2
from lmms_eval.tasks import TaskManager
from PIL import Image

from llava_vitsplit.eval.lmms_model import LlavaViTSplitLmms, settings_from_gen_kwargs

from .benchmark_data import MMBENCH_ITEMS, POPE_ITEMS, VQAV2_ITEMS, export_benchmarks
from .entry_points import write_dist_info
from .hand_scores import mmbench_by_hand, pope_by_hand, vqav2_by_hand

REPO_EVAL_DIR = Path(__file__).resolve().parents[2] / "eval"
TASKS = ["pope_local", "vqav2_val_local", "mmbench_en_dev_local"]


@pytest.fixture(scope="module")
def lmms_model(tiny_checkpoint):
    return LlavaViTSplitLmms(pretrained=str(tiny_checkpoint), device="cpu", batch_size="4")


@pytest.fixture(scope="module")
def task_manager(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmms-model")
    include = root / "eval"
    shutil.copytree(REPO_EVAL_DIR, include, ignore=shutil.ignore_patterns("__pycache__", "*.parquet"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf-cache")
        export_benchmarks(include / "data", root / "hub", POPE_ITEMS, VQAV2_ITEMS, MMBENCH_ITEMS)
    return TaskManager(include_path=str(include), include_defaults=False)


def test_entry_point_resolves_the_model_class(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(write_dist_info(tmp_path)))
    registry = ModelRegistryV2()  # what lmms-eval builds at start-up, from the same entry points
    registry.load_entrypoint_manifests()
    assert registry.get_model_class("llava_vitsplit") is LlavaViTSplitLmms
    assert registry.resolve("llava_vitsplit").model_type == "simple"


def test_constructor_rejects_what_it_cannot_do(tiny_checkpoint):
    with pytest.raises(TypeError, match="unknown model_args \\['conv_mode'\\]"):
        LlavaViTSplitLmms(pretrained=str(tiny_checkpoint), conv_mode="v1")
    with pytest.raises(ValueError, match="batch_size 'auto' is not supported"):
        LlavaViTSplitLmms(pretrained=str(tiny_checkpoint), batch_size="auto")
    with pytest.raises(ValueError, match="unknown conversation template 'chatml'"):
        LlavaViTSplitLmms(pretrained=str(tiny_checkpoint), device="cpu", conv_template="chatml")
    capped = LlavaViTSplitLmms(pretrained=str(tiny_checkpoint), device="cpu", batch_size=16, max_batch_size=2)
    assert capped.batch_size == 2


def _requests(lmms_model, docs, kind, second_args):
    """Instances over an in-memory task, as lmms-eval builds them."""
    lmms_model.task_dict = {"toy": {"test": docs}}
    return [
        Instance(
            request_type=kind,
            arguments=(f"Question {i}?", second, lambda doc: doc["visuals"], i, "toy", "test"),
            idx=0,
            metadata={"task": "toy", "doc_id": i, "repeats": 1},
        )
        for i, second in enumerate(second_args)
    ]


def test_generate_until_batches_and_keeps_request_order(lmms_model):
    docs = [{"visuals": [Image.new("RGB", (30 + 7 * i, 30), "red")]} for i in range(5)]
    greedy = {"max_new_tokens": 5, "temperature": 0, "do_sample": False}
    stop = {**greedy, "until": ["ASSISTANT:"]}
    requests = _requests(lmms_model, docs, "generate_until", [greedy, stop, greedy, stop, greedy])
    batched = lmms_model.generate_until(requests)
    alone = [lmms_model.generate_until([request])[0] for request in requests]
    assert batched == alone and len(batched) == 5


def test_loglikelihood_returns_summed_log_probabilities(lmms_model):
    docs = [{"visuals": [Image.new("RGB", (32, 32), color)]} for color in ("red", "blue", "green")]
    requests = _requests(lmms_model, docs, "loglikelihood", [" yes", " no dog", lambda doc: " cat"])
    results = lmms_model.loglikelihood(requests)
    expected = lmms_model.answerer.loglikelihood(
        ["Question 0?", "Question 1?", "Question 2?"],
        [" yes", " no dog", " cat"],
        [d["visuals"] for d in docs],
    )
    assert [score for score, _ in results] == pytest.approx([score for score, _ in expected], abs=1e-4)
    assert all(isinstance(greedy, bool) for _, greedy in results)
    # Summed, not averaged: two tokens cost more than one of them.
    assert results[1][0] < min(
        lmms_model.loglikelihood(_requests(lmms_model, docs, "loglikelihood", [" no"] * 2))[1][0], 0
    )


def test_several_images_are_answered_and_a_video_is_a_clear_error(lmms_model):
    pair = [Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")]
    docs = [{"visuals": pair}, {"visuals": ["clip.mp4"]}]
    two_images, video = _requests(lmms_model, docs, "generate_until", [{"max_new_tokens": 2}] * 2)
    (reply,) = lmms_model.generate_until([two_images])
    assert reply == lmms_model.answerer.generate(["Question 0?"], [pair], settings_from_gen_kwargs({"max_new_tokens": 2}))[0]
    with pytest.raises(ValueError, match="document 1 gives a str visual; only images"):
        lmms_model.generate_until([video])
    with pytest.raises(NotImplementedError, match="multi-round"):
        lmms_model.generate_until_multi_round([])


def test_local_tasks_score_the_models_answers_as_the_definitions_do(
    lmms_model, task_manager, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)  # the MMBench submission goes to ./submissions
    output = simple_evaluate(
        model=lmms_model,
        tasks=TASKS,
        task_manager=task_manager,
        batch_size=4,
        device="cpu",
        bootstrap_iters=0,
        gen_kwargs="max_new_tokens=6",  # a random model never stops by itself
    )
    answers = {
        task: [
            sample["filtered_resps"][0]
            for sample in sorted(output["samples"][task], key=lambda s: s["doc_id"])
        ]
        for task in TASKS
    }
    results = output["results"]
    pope = pope_by_hand([item["answer"] for item in POPE_ITEMS], answers["pope_local"])
    for name in ("accuracy", "precision", "recall", "yes_ratio"):
        assert results["pope_local"][f"pope_{name},none"] == pytest.approx(pope[name])
    assert results["pope_local"]["pope_f1_score,none"] == pytest.approx(pope["f1"])
    assert results["vqav2_val_local"]["exact_match,none"] == pytest.approx(
        vqav2_by_hand(VQAV2_ITEMS, answers["vqav2_val_local"])
    )
    assert results["mmbench_en_dev_local"]["mmbench_accuracy,none"] == pytest.approx(
        mmbench_by_hand(MMBENCH_ITEMS, answers["mmbench_en_dev_local"])
    )
