"""DeepSpeed ZeRO over two CPU ranks (gloo): sharded runs equal plain ones, resume after kill -9, export.

Every run here is a real two-process launch (`torch.distributed.run`, DeepSpeed's CPU accelerator);
the shard files each rank writes are read back with DeepSpeed's own parser to show that the
fp32 master weights (and the optimiser state with them) really are split between the ranks.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from llava_vitsplit.cli import main as cli_main
from llava_vitsplit.model.builder import load_pretrained_model
from llava_vitsplit.model.projector_io import PROJECTOR_WEIGHTS
from llava_vitsplit.train.train import run
from llava_vitsplit.train.zero_export import export_zero_checkpoint

from .test_training_runs import REPO_ROOT, _subprocess_env, train_argv

SCRIPTS = REPO_ROOT / "scripts"
STEPS = 4
LORA = dict(lora_enable=True, lora_r=4, lora_alpha=8, lora_dropout=0.0)


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def two_rank_command(parts, output: Path, *, stage: int, config: Path, **flags) -> list[str]:
    """Two ranks x 2 samples: the global batch of a plain one-process run with 4 per device."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", _free_port()]
    return launcher + ["-m", "llava_vitsplit.train"] + train_argv(
        parts, output, stage=stage, deepspeed=config, per_device_train_batch_size=2, **flags
    )


def launch(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=_subprocess_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def losses(output: Path) -> list[float]:
    state = json.loads((output / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def assert_same_weights(actual: dict, expected: dict, *, exact: bool = False) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        assert actual[key].shape == expected[key].shape, key
        if exact:
            assert torch.equal(actual[key], expected[key]), key
        else:
            torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)


def assert_sharded_over_two_ranks(checkpoint: Path) -> None:
    """Each rank's file holds only its part of the fp32 master weights (DeepSpeed's own reader)."""
    from deepspeed.utils.zero_to_fp32 import get_optim_files, parse_optim_states

    tag = (checkpoint / "latest").read_text().strip()
    shards = get_optim_files(str(checkpoint / tag))
    stage, world_size, flat_groups, _ = parse_optim_states(shards, str(checkpoint / tag))
    assert world_size == 2 and len(shards) == 2
    per_rank = [sum(group.numel() for group in (groups if isinstance(groups, list) else [groups]))
                for groups in flat_groups]
    assert per_rank[0] > 0 and abs(per_rank[0] - per_rank[1]) <= 2 * 64  # halves, up to alignment padding
    assert stage in (2, 3)


def zero_config(tmp: Path, name: str, *, gather: bool = True) -> Path:
    """A shipped DeepSpeed JSON, or ZeRO-3 with the gathered 16-bit save off (shards only)."""
    if gather:
        return SCRIPTS / f"{name}.json"
    config = json.loads((SCRIPTS / f"{name}.json").read_text())
    config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = False
    path = tmp / f"{name}_shards_only.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def plain_stage1(tiny_parts, tmp_path_factory):
    output = tmp_path_factory.mktemp("plain_stage1")
    run(train_argv(tiny_parts, output, stage=1, max_steps=STEPS))
    return output


@pytest.fixture(scope="module")
def zero3_stage1(tiny_parts, tmp_path_factory):
    """Stage 1 on two ZeRO-3 ranks: the projector is gathered whole from both ranks' shards."""
    output = tmp_path_factory.mktemp("zero3_stage1")
    launch(two_rank_command(tiny_parts, output, stage=1, config=SCRIPTS / "zero3.json", max_steps=STEPS,
                            save_strategy="steps", save_steps=STEPS))
    return output


@pytest.fixture(scope="module")
def plain_stage2(zero3_stage1, tiny_parts, tmp_path_factory):
    output = tmp_path_factory.mktemp("plain_stage2")
    run(train_argv(tiny_parts, output, stage=2, max_steps=STEPS,
                   pretrain_mm_mlp_adapter=zero3_stage1 / PROJECTOR_WEIGHTS))
    return output


@pytest.mark.slow
@pytest.mark.parametrize("config", ["zero2", "zero3"])
def test_stage1_on_two_zero_ranks_matches_one_plain_process(config, plain_stage1, zero3_stage1, tiny_parts, tmp_path):
    if config == "zero3":
        sharded = zero3_stage1
    else:
        sharded = tmp_path / config
        launch(two_rank_command(tiny_parts, sharded, stage=1, config=SCRIPTS / f"{config}.json", max_steps=STEPS,
                                save_strategy="steps", save_steps=STEPS))
    assert_sharded_over_two_ranks(sharded / f"checkpoint-{STEPS}")
    torch.testing.assert_close(losses(sharded), losses(plain_stage1), rtol=1e-4, atol=1e-5)
    assert not (sharded / "model.safetensors").exists()  # stage 1 saves the projector alone
    assert_same_weights(load_file(sharded / PROJECTOR_WEIGHTS), load_file(plain_stage1 / PROJECTOR_WEIGHTS))


@pytest.mark.slow
def test_stage2_on_two_zero3_ranks_loads_the_gathered_projector_and_matches_a_plain_run(
    zero3_stage1, plain_stage2, tiny_parts, tmp_path
):
    sharded = tmp_path / "zero3_stage2"
    done = launch(two_rank_command(tiny_parts, sharded, stage=2, config=SCRIPTS / "zero3.json", max_steps=STEPS,
                                   save_strategy="steps", save_steps=STEPS,
                                   pretrain_mm_mlp_adapter=zero3_stage1 / PROJECTOR_WEIGHTS))
    assert "2 process(es) x 2 per device x 1 accumulation = global batch 4" in done.stderr
    assert_sharded_over_two_ranks(sharded / f"checkpoint-{STEPS}")
    # Equal first losses: the sharded model started from the same projector as the plain one.
    torch.testing.assert_close(losses(sharded), losses(plain_stage2), rtol=1e-4, atol=1e-5)
    assert_same_weights(load_file(sharded / "model.safetensors"), load_file(plain_stage2 / "model.safetensors"))


RESUME_CASES = {"full": ({}, "model.safetensors"), "lora": (LORA, "adapter_model.safetensors")}


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the launcher and both ranks at once, as a crashed node would lose them."""
    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for member in tree:
        member.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("case", RESUME_CASES)
def test_two_rank_zero3_run_killed_after_a_checkpoint_resumes_to_the_same_weights(
    case, zero3_stage1, tiny_parts, tmp_path
):
    extra, weights = RESUME_CASES[case]
    flags = dict(extra, max_steps=6, save_strategy="steps", save_steps=1,
                 pretrain_mm_mlp_adapter=zero3_stage1 / PROJECTOR_WEIGHTS)
    config = SCRIPTS / "zero3.json"
    uninterrupted = tmp_path / "uninterrupted"
    launch(two_rank_command(tiny_parts, uninterrupted, stage=2, config=config, **flags))

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(two_rank_command(tiny_parts, interrupted, stage=2, config=config, **flags),
                               env=_subprocess_env(), cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not (interrupted / "checkpoint-3" / "trainer_state.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its third checkpoint"
        time.sleep(0.02)
    _kill_tree(process)
    assert not (interrupted / weights).exists()

    resumed = launch(two_rank_command(tiny_parts, interrupted, stage=2, config=config, **flags))
    assert "resuming from" in resumed.stderr
    state = json.loads((interrupted / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry][-1] == 6
    assert_same_weights(load_file(interrupted / weights), load_file(uninterrupted / weights), exact=True)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [1, 2])
def test_export_zero_consolidates_a_shards_only_checkpoint(
    stage, zero3_stage1, plain_stage1, plain_stage2, tiny_parts, tmp_path
):
    flags = dict(max_steps=STEPS, save_strategy="steps", save_steps=STEPS)
    if stage == 2:
        flags["pretrain_mm_mlp_adapter"] = zero3_stage1 / PROJECTOR_WEIGHTS
    sharded = tmp_path / "shards"
    launch(two_rank_command(tiny_parts, sharded, stage=stage, config=zero_config(tmp_path, "zero3", gather=False),
                            **flags))
    checkpoint = sharded / f"checkpoint-{STEPS}"
    weights = PROJECTOR_WEIGHTS if stage == 1 else "model.safetensors"
    assert not (checkpoint / weights).exists() and not (sharded / weights).exists()  # nothing consolidated yet

    exported = tmp_path / "exported"
    assert cli_main(["export-zero", str(checkpoint), str(exported)]) == 0
    with pytest.raises(FileExistsError, match="already holds files"):
        cli_main(["export-zero", str(checkpoint), str(exported)])
    plain = plain_stage1 if stage == 1 else plain_stage2
    assert_same_weights(load_file(exported / weights), load_file(plain / weights))
    if stage == 2:
        tokenizer, model, _, _ = load_pretrained_model(exported, device="cpu")
        assert tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id


def test_export_zero_names_a_folder_without_deepspeed_shards(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llava_vitsplit"}')
    with pytest.raises(FileNotFoundError, match="no DeepSpeed 'latest' file"):
        export_zero_checkpoint(tmp_path, tmp_path / "out")


def test_export_zero_sends_a_lora_checkpoint_to_merge_lora(tmp_path):
    for name in ("config.json", "adapter_config.json"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "latest").write_text("global_step2")
    with pytest.raises(ValueError, match="LoRA checkpoint.*merge-lora"):
        export_zero_checkpoint(tmp_path, tmp_path / "out")


def test_export_zero_refuses_an_output_folder_inside_the_checkpoint(tmp_path):
    with pytest.raises(FileExistsError, match="overlaps an input"):
        cli_main(["export-zero", str(tmp_path), str(tmp_path / "exported")])
