"""Two CPU processes (gloo) under torch.distributed.run: sharded batches, SyncBN-free, summed metrics."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import tiny_dinov2, write_depth_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_ARGS = ["--num-task-layers", "1", "--num-prior-layers", "2", "--prior-start-layer", "1"]


def run(argv, processes):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    launcher += ["--master_port", "29531", "-m", "llava_vitsplit", *argv]
    env = os.environ | {"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launcher, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_two_processes_train_and_score_every_image_once(tmp_path):
    tiny_dinov2().save_pretrained(tmp_path / "backbone")
    data = write_depth_folder(tmp_path / "data", counts=(("train", 8), ("val", 3)))
    out = tmp_path / "run"
    train = ["dense", "train", "--preset", "nyu-s", "--dataset", "folder", "--data-root", str(data)]
    train += ["--backbone-path", str(tmp_path / "backbone"), "--output-dir", str(out), "--crop-size", "32"]
    train += ["--batch-size", "4", "--num-workers", "0", "--save-interval", "1", "--keep-checkpoints", "1", *TINY_ARGS]
    run([*train, "--iters", "2"], processes=2)
    # Accelerate names (by step) and rotates the checkpoints with both processes saving
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint_2"]
    assert (out / "checkpoints" / "checkpoint_2" / "trainer_state.json").is_file()
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    distributed = [r["eval"] for r in logged if "eval" in r][-1]
    assert distributed["images"] == 3  # 2 + 1 images on the two processes, summed
    scores = {}
    for processes in (1, 2):
        target = tmp_path / f"eval{processes}.json"
        evaluate = [
            "dense",
            "eval",
            "--checkpoint",
            str(out / "final"),
            "--data-root",
            str(data),
            "--output",
            str(target),
        ]
        run(evaluate, processes)
        scores[processes] = json.loads(target.read_text())["metrics"]
    run([*train, "--iters", "3", "--resume", "auto"], processes=2)  # both processes resume from step 2
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint_3"]
    resumed = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in resumed if "loss" in r] == [2, 3]  # logged at the last step of each run
    for name in ("abs_rel", "rmse", "delta1"):
        assert scores[2][name] == pytest.approx(scores[1][name], rel=1e-5)
        assert distributed[name] == pytest.approx(scores[1][name], rel=1e-4)
