"""Arguments that would make a training run silently wrong are refused; reruns are checked
against the run recorded in the output folder; `--resume_from_checkpoint PATH` is honoured."""

from __future__ import annotations

import json
import logging
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file

from llava_vitsplit.model.projector_io import PROJECTOR_WEIGHTS
from llava_vitsplit.train.arguments import parse_arguments
from llava_vitsplit.train.model_setup import build_model
from llava_vitsplit.train.run_record import RUN_ARGUMENTS_FILE
from llava_vitsplit.train.train import run

from .test_training_runs import train_argv


@pytest.mark.parametrize("flag", ["learning_rate", "mm_projector_lr", "vitsplit_task_head_lr"])
def test_a_negative_learning_rate_is_refused(flag, tiny_parts, tmp_path):
    with pytest.raises(ValueError, match=rf"--{flag} -1.0: a learning rate must be >= 0"):
        parse_arguments(train_argv(tiny_parts, tmp_path, stage=1, **{flag: -1}))


def test_a_run_that_trains_no_step_is_refused(tiny_parts, tmp_path):
    with pytest.raises(ValueError, match="trains no step"):
        parse_arguments(train_argv(tiny_parts, tmp_path, stage=1, num_train_epochs=-1, max_steps=-1))
    assert not (tmp_path / PROJECTOR_WEIGHTS).exists()


def test_more_prior_layers_than_the_tower_has_is_named(tiny_parts, tmp_path):
    model_args, _, training_args = parse_arguments(
        train_argv(tiny_parts, tmp_path, stage=1, vitsplit_num_prior_layers=9)
    )
    with pytest.raises(ValueError, match=r"num_prior_layers \(K_p\) = 9 .*only 4 blocks.*--vitsplit_num_prior_layers"):
        build_model(model_args, training_args)


def test_an_image_smaller_than_a_patch_is_named(tiny_parts, tmp_path):
    model_args, _, training_args = parse_arguments(train_argv(tiny_parts, tmp_path, stage=1, image_size=4))
    with pytest.raises(ValueError, match=r"image_size 4 is smaller than one patch .* \(8x8 pixels\)"):
        build_model(model_args, training_args)


@pytest.fixture(scope="module")
def recorded_run(tiny_parts, tmp_path_factory):
    """A 4-step stage-1 run with checkpoints at steps 2 and 4, and --model_max_length above the LLM's range."""
    output = tmp_path_factory.mktemp("recorded") / "run"
    flags = dict(stage=1, max_steps=4, save_strategy="steps", save_steps=2, model_max_length=4096)
    run(train_argv(tiny_parts, output, **flags))
    return output, flags


def test_the_run_arguments_are_recorded_beside_the_checkpoints(recorded_run):
    output, _ = recorded_run
    record = json.loads((output / RUN_ARGUMENTS_FILE).read_text())
    assert record["learning_rate"] == 1e-3 and record["vitsplit_num_task_layers"] == 1
    assert len(record["data_sha256"]) == 64
    for step in (2, 4):
        assert json.loads((output / f"checkpoint-{step}" / RUN_ARGUMENTS_FILE).read_text()) == record
    # The tiny LLM has 256 positions: the 4096 asked for was clamped (and recorded as asked).
    assert record["model_max_length"] == 4096


def test_model_max_length_above_the_llm_positions_is_clamped_with_a_message(tiny_parts, tmp_path, caplog):
    from llava_vitsplit.train.model_setup import fit_model_max_length

    _, _, training_args = parse_arguments(train_argv(tiny_parts, tmp_path, stage=1, model_max_length=4096))
    config = type("TextConfig", (), {"max_position_embeddings": 256})()
    with caplog.at_level(logging.WARNING):
        fit_model_max_length(training_args, config, "tiny-llm")
    assert training_args.model_max_length == 256
    assert "--model_max_length 4096 is above the LLM's max_position_embeddings 256 (tiny-llm)" in caplog.text


@pytest.mark.parametrize(
    "changes,listed",
    [
        (dict(learning_rate=5e-4), [r"--learning_rate: 0\.001 in the recorded run, 0\.0005 now"]),
        (dict(vitsplit_num_task_layers=2), [r"--vitsplit_num_task_layers: 1 in the recorded run, 2 now"]),
        (dict(seed=8, logging_steps=2), [r"--logging_steps: 1", r"--seed: 7"]),
    ],
)
def test_a_rerun_with_other_arguments_is_refused_with_the_differences(changes, listed, recorded_run, tiny_parts):
    output, flags = recorded_run
    before = {path.name: path.stat().st_mtime_ns for path in output.rglob("*") if path.is_file()}
    with pytest.raises(ValueError, match="holds another run") as refused:
        run(train_argv(tiny_parts, output, **{**flags, **changes}))
    for pattern in listed:
        assert re.search(pattern, str(refused.value)), str(refused.value)
    assert {path.name: path.stat().st_mtime_ns for path in output.rglob("*") if path.is_file()} == before


def test_changes_that_define_the_run_cannot_be_allowed(recorded_run, tiny_parts):
    output, flags = recorded_run
    argv = train_argv(tiny_parts, output, **flags, seed=8, allow_changed_args="seed")
    with pytest.raises(ValueError, match="--allow_changed_args seed: these define the run"):
        run(argv)


def test_data_changed_since_the_run_is_refused_even_at_the_same_path(recorded_run, tiny_parts, tmp_path):
    output, flags = recorded_run
    moved = tmp_path / "run"
    shutil.copytree(output, moved)
    for path in moved.rglob(RUN_ARGUMENTS_FILE):  # as if the data file was edited after the run
        record = json.loads(path.read_text())
        path.write_text(json.dumps(dict(record, data_sha256="0" * 64)))
    with pytest.raises(ValueError, match=r"--data_sha256: '0{64}' in the recorded run, '[0-9a-f]{64}' now"):
        run(train_argv(tiny_parts, moved, **flags))


def test_an_allowed_change_continues_the_run(recorded_run, tiny_parts, tmp_path):
    output, flags = recorded_run
    continued = tmp_path / "run"
    shutil.copytree(output, continued)
    run(train_argv(tiny_parts, continued, **{**flags, "max_steps": 6}, allow_changed_args="max_steps"))
    state = json.loads((continued / "checkpoint-6" / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4, 5, 6]
    assert json.loads((continued / RUN_ARGUMENTS_FILE).read_text())["max_steps"] == 6


def test_resume_from_checkpoint_path_is_honoured(recorded_run, tiny_parts, tmp_path):
    output, flags = recorded_run
    elsewhere = tmp_path / "elsewhere"
    run(train_argv(tiny_parts, elsewhere, **flags, resume_from_checkpoint=output / "checkpoint-2"))
    state = json.loads((elsewhere / "checkpoint-4" / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4]  # 1, 2 carried over
    assert not (elsewhere / "checkpoint-2").exists()  # steps 1-2 were not trained again
    expected, actual = load_file(output / PROJECTOR_WEIGHTS), load_file(elsewhere / PROJECTOR_WEIGHTS)
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def test_resume_from_an_unusable_checkpoint_path_is_refused(recorded_run, tiny_parts, tmp_path):
    output, flags = recorded_run
    with pytest.raises(FileNotFoundError, match="--resume_from_checkpoint .*missing: no such checkpoint folder"):
        run(train_argv(tiny_parts, tmp_path / "a", **flags, resume_from_checkpoint=tmp_path / "missing"))
    broken = tmp_path / "checkpoint-2"
    shutil.copytree(output / "checkpoint-2", broken)
    (broken / "trainer_state.json").write_text('{"global_st')  # killed while saving
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        run(train_argv(tiny_parts, tmp_path / "b", **flags, resume_from_checkpoint=broken))
    (broken / "trainer_state.json").write_text((output / "checkpoint-2" / "trainer_state.json").read_text())
    with pytest.raises(ValueError, match="holds another run"):
        run(train_argv(tiny_parts, tmp_path / "c", **{**flags, "learning_rate": 5e-4}, resume_from_checkpoint=broken))


def test_a_checkpoint_without_a_record_is_refused(recorded_run, tiny_parts, tmp_path):
    output, flags = recorded_run
    old = tmp_path / "old"
    shutil.copytree(output, old)
    for record in old.rglob(RUN_ARGUMENTS_FILE):
        record.unlink()
    with pytest.raises(ValueError, match=f"has no {RUN_ARGUMENTS_FILE}"):
        run(train_argv(tiny_parts, old, **flags))
