"""Our lmms-eval tasks (eval/*_local) on tiny local benchmark copies, without a model.

Tiny Hub-like datasets (real PNG images, the Hub's columns) are exported with
`llava-vitsplit eval export-data` into a copy of the repository's eval/ folder; lmms-eval loads the
task YAMLs from there with --include_path semantics, and a scripted model returns fixed answers
through lmms-eval's own evaluator. lmms-eval is a declared dependency (the `eval` extra): if it
cannot be imported this module fails at collection instead of being skipped.
"""

import io
import math
import shutil
from pathlib import Path

import datasets
import pandas as pd
import pytest
import yaml
from lmms_eval.api.model import lmms
from lmms_eval.evaluator import simple_evaluate
from lmms_eval.tasks import TaskManager, get_task_dict
from lmms_eval.tasks._task_utils.vqa_eval_metric import EvalAIAnswerProcessor
from lmms_eval.tasks.mmbench import en_utils as builtin_mmbench
from lmms_eval.tasks.pope import utils as builtin_pope
from lmms_eval.tasks.vqav2 import utils as builtin_vqav2
from PIL import Image

from llava_vitsplit.cli import main
from llava_vitsplit.eval.local_data import BENCHMARKS
from llava_vitsplit.eval.vqav2 import CONTRACTIONS

REPO_EVAL_DIR = Path(__file__).resolve().parents[2] / "eval"
TASKS = ("pope_local", "vqav2_val_local", "mmbench_en_dev_local")


def _png(color) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), color).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def _write_hub_snapshot(
    root: Path, rows: dict, features: datasets.Features, shard: str, readme: str | None = None
):
    shard_path = root / shard
    shard_path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(shard_path))
    if readme:
        (root / "README.md").write_text(readme)
    return root


def _pope_snapshot(root):
    string = datasets.Value("string")
    features = datasets.Features(
        {
            "id": string,
            "question_id": string,
            "question": string,
            "answer": string,
            "image_source": string,
            "image": datasets.Image(),
            "category": string,
        }
    )
    categories = ["adversarial", "adversarial", "popular", "popular", "random", "random"]
    rows = {
        "id": [str(i) for i in range(6)],
        "question_id": [str(i + 1) for i in range(6)],
        "question": [f"Is there a thing {i} in the image? " for i in range(6)],
        "answer": ["yes", "no"] * 3,
        "image_source": [f"COCO_{i}" for i in range(6)],
        "image": [_png("red"), _png("green"), _png("blue"), _png("white"), _png("black"), _png("gray")],
        "category": categories,
    }
    return _write_hub_snapshot(root, rows, features, "data/test-00000-of-00001.parquet")


HUMANS_NUMBER = ["two", "2", "2"] + ["3"] * 7  # "2" scores 0.9 (see test_vqav2)
HUMANS_YES = ["yes"] * 9 + ["no"]  # "no" matches once: leave-one-out mean (9 * 1/3 + 0) / 10 = 0.3


def _vqav2_snapshot(root):
    answer = {
        "answer": datasets.Value("string"),
        "answer_confidence": datasets.Value("string"),
        "answer_id": datasets.Value("int64"),
    }
    features = datasets.Features(
        {
            "question_type": datasets.Value("string"),
            "multiple_choice_answer": datasets.Value("string"),
            "answers": [answer],
            "image_id": datasets.Value("int64"),
            "answer_type": datasets.Value("string"),
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "image": datasets.Image(),
        }
    )

    def as_answers(humans):
        return [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(humans)]

    rows = {
        "question_type": ["how many", "is there"],
        "multiple_choice_answer": ["2", "yes"],
        "answers": [as_answers(HUMANS_NUMBER), as_answers(HUMANS_YES)],
        "image_id": [1, 2],
        "answer_type": ["number", "yes/no"],
        "question_id": [1001, 1002],
        "question": ["How many dogs are there?", "Is there a cat?"],
        "image": [_png("red"), _png("blue")],
    }
    return _write_hub_snapshot(root, rows, features, "data/validation-00000-of-00001.parquet")


def _mmbench_snapshot(root):
    string = datasets.Value("string")
    columns = ("index", "question", "hint", "answer", "A", "B", "C", "D", "category")
    features = datasets.Features(
        {
            **{name: string for name in columns},
            "image": datasets.Image(),
            "source": string,
            "L2-category": string,
            "comment": string,
            "split": string,
        }
    )
    rows = {
        "index": ["0", "1", "2"],  # the Hub's en config stores index as text
        "question": ["Which animal is shown?", "What colour is it?", "Which animal?"],
        "hint": [None, "Look at the centre.", "nan"],
        "answer": ["B", "A", "C"],
        "A": ["dog", "red", "dog"],
        "B": ["cat", "blue", "cat"],
        "C": ["cow", None, "cow"],
        "D": ["pig", None, "pig"],
        "category": ["animals", "colours", "animals"],
        "image": [_png("red"), _png("blue"), _png("green")],
        "source": ["s"] * 3,
        "L2-category": ["perception"] * 3,
        "comment": [None] * 3,
        "split": ["dev"] * 3,
    }
    readme = "---\nconfigs:\n- config_name: en\n  data_files:\n  - split: dev\n    path: en/dev-*\n---\n"
    return _write_hub_snapshot(root, rows, features, "en/dev-00000-of-00001.parquet", readme)


FIXED_ANSWERS = {
    # labels yes,no per category; replies give adversarial TP+TN, popular FN+FP, random TP+TN
    "pope_local": ["Yes, there is.", "No.", "No, there is not.", "Yes.", "Yes", "There is no such thing."],
    "vqav2_val_local": ["Two", "No"],
    "mmbench_en_dev_local": ["B", "The answer is B.", "(C) cow"],
}


class ScriptedModel(lmms):
    """Answers each request from FIXED_ANSWERS by document id, after checking its image decodes."""

    def __init__(self):
        super().__init__()
        self.requests = []

    def generate_until(self, requests):
        replies = []
        for request in requests:
            context, _, doc_to_visual, doc_id, task, split = request.args
            images = doc_to_visual(self.task_dict[task][split][doc_id])
            assert len(images) == 1 and images[0].mode == "RGB" and images[0].size == (6, 4)
            self.requests.append((task, doc_id, context))
            replies.append(FIXED_ANSWERS[task][doc_id])
        return replies

    def loglikelihood(self, requests):
        raise NotImplementedError("generation tasks only")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("generation tasks only")


@pytest.fixture(scope="module")
def include_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmms")
    include = root / "eval"
    shutil.copytree(REPO_EVAL_DIR, include, ignore=shutil.ignore_patterns("__pycache__", "*.parquet"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "hf-cache")
        for benchmark, make in (
            ("pope", _pope_snapshot),
            ("vqav2", _vqav2_snapshot),
            ("mmbench", _mmbench_snapshot),
        ):
            source = make(root / "hub" / benchmark)
            assert (
                main(
                    [
                        "eval",
                        "export-data",
                        "--benchmark",
                        benchmark,
                        "--from",
                        str(source),
                        "--out",
                        str(include / "data"),
                    ]
                )
                == 0
            )
    return include


@pytest.fixture(scope="module")
def task_manager(include_dir):
    return TaskManager(include_path=str(include_dir), include_defaults=False)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    # lmms-eval caches datasets under HF_DATASETS_CACHE and writes submissions to ./submissions.
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.chdir(tmp_path)


def test_yaml_data_files_are_where_export_writes():
    for yaml_path, benchmark in (
        ("pope_local/pope_local.yaml", "pope"),
        ("vqav2_local/vqav2_val_local.yaml", "vqav2"),
        ("mmbench_local/mmbench_en_dev_local.yaml", "mmbench_en"),
    ):
        text = (REPO_EVAL_DIR / yaml_path).read_text()
        config = yaml.safe_load("\n".join(line for line in text.splitlines() if "!function" not in line))
        spec = BENCHMARKS[benchmark]
        assert config["test_split"] == spec.split
        data_file = (REPO_EVAL_DIR / yaml_path).parent / config["dataset_kwargs"]["data_files"][spec.split]
        assert data_file.resolve() == (REPO_EVAL_DIR / "data" / spec.relative_path).resolve()


def test_export_embeds_images_with_hub_columns(include_dir):
    table = pd.read_parquet(include_dir / "data" / "mmbench_en" / "dev.parquet")
    assert {
        "index",
        "question",
        "hint",
        "A",
        "B",
        "C",
        "D",
        "answer",
        "category",
        "L2-category",
        "image",
    } <= set(table.columns)
    assert Image.open(io.BytesIO(table.loc[0, "image"]["bytes"])).size == (6, 4)


def test_prompts_match_the_builtin_tasks(task_manager):
    builtins = {
        "pope_local": builtin_pope.pope_doc_to_text,
        "vqav2_val_local": builtin_vqav2.vqav2_doc_to_text,
        "mmbench_en_dev_local": builtin_mmbench.mmbench_doc_to_text,
    }
    tasks = get_task_dict(list(TASKS), task_manager)
    for name, builtin_doc_to_text in builtins.items():
        task = tasks[name]
        docs = list(task.test_docs())
        assert len(docs) == len(FIXED_ANSWERS[name])
        for doc in docs:
            assert task.doc_to_text(doc) == builtin_doc_to_text(doc, task.lmms_eval_specific_kwargs)
    first = list(tasks["mmbench_en_dev_local"].test_docs())[1]
    assert tasks["mmbench_en_dev_local"].doc_to_text(first) == (
        "Look at the centre. What colour is it? There are several options:\nA. red\nB. blue\n\n"
        "Answer with the option's letter from the given choices directly."
    )


def test_vqav2_normalisation_agrees_with_lmms_eval_tables():
    functional = {
        key: value
        for key, value in EvalAIAnswerProcessor.CONTRACTIONS.items()
        if key == key.lower() and key != value
    }
    assert CONTRACTIONS == functional


def test_scores_through_lmms_eval_evaluator(task_manager):
    model = ScriptedModel()
    output = simple_evaluate(
        model=model,
        tasks=list(TASKS),
        task_manager=task_manager,
        batch_size=1,
        device="cpu",
        bootstrap_iters=0,
    )
    results = output["results"]
    pope = results["pope_local"]
    # Pooled: TP 2, TN 2, FN 1, FP 1.
    assert pope["pope_accuracy,none"] == pytest.approx(4 / 6)
    assert pope["pope_precision,none"] == pytest.approx(2 / 3)
    assert pope["pope_recall,none"] == pytest.approx(2 / 3)
    assert pope["pope_f1_score,none"] == pytest.approx(2 / 3)
    assert pope["pope_yes_ratio,none"] == pytest.approx(0.5)
    assert (pope["pope_f1_adversarial,none"], pope["pope_f1_popular,none"], pope["pope_f1_random,none"]) == (
        1.0,
        0.0,
        1.0,
    )
    assert pope["pope_f1_category_mean,none"] == pytest.approx(2 / 3)
    assert results["vqav2_val_local"]["exact_match,none"] == pytest.approx((0.9 + 0.3) / 2)
    assert results["mmbench_en_dev_local"]["mmbench_accuracy,none"] == pytest.approx(2 / 3)
    submission = pd.read_excel(Path("submissions") / "mmbench_en_dev_local_results.xlsx")
    assert submission["index"].tolist() == [0, 1, 2]
    assert submission["prediction"].tolist() == FIXED_ANSWERS["mmbench_en_dev_local"]
    assert math.isnan(submission.loc[1, "C"])
    assert len(model.requests) == sum(len(answers) for answers in FIXED_ANSWERS.values())
