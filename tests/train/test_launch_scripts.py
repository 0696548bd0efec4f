"""The `deepspeed` command lines scripts/pretrain.sh, finetune.sh and finetune_lora.sh build (DRY_RUN=1).

No cluster exists here: these check what each script would launch on one node or several, and that
per-device batch x accumulation x GPUs x nodes stays each recipe's global batch.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GLOBAL_BATCH = {"pretrain": 256, "finetune": 128, "finetune_lora": 128}
DEEPSPEED_CONFIG = {"pretrain": "scripts/zero2.json", "finetune": "scripts/zero3.json", "finetune_lora": "scripts/zero3.json"}
GPU_RECIPE = {"MODEL_PATH": "/models/vicuna-7b-v1.5", "VISION_TOWER": "/models/clip-vit-large-patch14-336",
              "DATA_PATH": "/data/train.json", "IMAGE_FOLDER": "/data/images"}
LAUNCH_VARIABLES = ("NUM_GPUS", "NUM_NODES", "HOSTFILE", "NO_SSH", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT",
                    "PER_DEVICE_BATCH", "DEEPSPEED_CONFIG", "OUTPUT_DIR")


def script(name: str, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in LAUNCH_VARIABLES}
    env.update(GPU_RECIPE, DRY_RUN="1", **variables)
    return subprocess.run(["bash", str(REPO_ROOT / "scripts" / f"{name}.sh"), *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def launched(name: str, *args: str, **variables: str) -> tuple[list[str], dict[str, str]]:
    """`(launcher part, training arguments as a dict)` of the printed command."""
    done = script(name, *args, **variables)
    assert done.returncode == 0, done.stderr
    command = shlex.split(done.stdout)
    split = command.index("--module")
    assert command[split + 1] == "llava_vitsplit.train"
    train = command[split + 2:]
    assert all(flag.startswith("--") for flag in train[::2]), train
    return command[:split], dict(zip(train[::2], train[1::2]))


def world_batch(arguments: dict[str, str], gpus: int, nodes: int) -> int:
    return int(arguments["--per_device_train_batch_size"]) * int(arguments["--gradient_accumulation_steps"]) * gpus * nodes


@pytest.fixture
def hostfile(tmp_path) -> Path:
    path = tmp_path / "hostfile"
    path.write_text("# two nodes of 8 GPUs\nnode-a slots=8\nnode-b slots=8\n")
    return path


@pytest.mark.parametrize("name", GLOBAL_BATCH)
def test_two_nodes_of_eight_gpus_keep_the_global_batch(name, hostfile):
    launcher, arguments = launched(name, NUM_GPUS="8", NUM_NODES="2", HOSTFILE=str(hostfile))
    assert launcher == ["deepspeed", "--num_gpus", "8", "--hostfile", str(hostfile), "--num_nodes", "2"]
    assert world_batch(arguments, 8, 2) == GLOBAL_BATCH[name]
    assert arguments["--gradient_accumulation_steps"] == "1"
    assert arguments["--deepspeed"] == DEEPSPEED_CONFIG[name]
    assert arguments["--version"] == ("plain" if name == "pretrain" else "v1")


@pytest.mark.parametrize("name", GLOBAL_BATCH)
def test_one_node_keeps_the_recipes_per_device_batch_and_accumulates(name):
    launcher, arguments = launched(name, NUM_GPUS="4")
    assert launcher == ["deepspeed", "--num_gpus", "4"]
    assert arguments["--per_device_train_batch_size"] == ("32" if name == "pretrain" else "16")
    assert arguments["--gradient_accumulation_steps"] == "2"
    assert world_batch(arguments, 4, 1) == GLOBAL_BATCH[name]


def test_per_device_batch_override_raises_the_accumulation(hostfile):
    _, arguments = launched("pretrain", NUM_GPUS="8", NUM_NODES="2", HOSTFILE=str(hostfile), PER_DEVICE_BATCH="4")
    assert (arguments["--per_device_train_batch_size"], arguments["--gradient_accumulation_steps"]) == ("4", "4")


def test_no_ssh_launch_names_this_node_and_the_master(hostfile):
    launcher, _ = launched("finetune_lora", NUM_GPUS="8", NUM_NODES="2", HOSTFILE=str(hostfile), NO_SSH="1",
                           NODE_RANK="1", MASTER_ADDR="10.0.0.1", MASTER_PORT="29600")
    assert launcher == ["deepspeed", "--num_gpus", "8", "--hostfile", str(hostfile), "--num_nodes", "2", "--no_ssh",
                        "--node_rank", "1", "--master_addr", "10.0.0.1", "--master_port", "29600"]


def test_extra_arguments_reach_the_trainer_last():
    done = script("finetune", "--num_train_epochs", "2", NUM_GPUS="8")
    assert done.returncode == 0, done.stderr
    assert shlex.split(done.stdout)[-2:] == ["--num_train_epochs", "2"]


@pytest.mark.parametrize(
    "variables,message",
    [
        (dict(NUM_GPUS="8", NUM_NODES="2"), "NUM_NODES=2 needs HOSTFILE"),
        (dict(NUM_GPUS="8", NUM_NODES="two"), "NUM_NODES must be a positive integer"),
        (dict(NUM_GPUS="3"), "global batch 256 is not a multiple of per-device batch 32 x 3 GPUs x 1 node(s)"),
        (dict(NUM_GPUS="8", NUM_NODES="2", HOSTFILE="/nonexistent/hostfile"), "is not a file"),
        (dict(NUM_GPUS="8", NUM_NODES="1", NO_SSH="1"), "NO_SSH=1 needs NODE_RANK"),
    ],
)
def test_bad_launch_settings_are_named(variables, message):
    done = script("pretrain", **variables)
    assert done.returncode != 0 and done.stdout == ""
    assert message in done.stderr


def test_a_hostfile_with_fewer_hosts_than_nodes_is_named(tmp_path):
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("node-a slots=8\n")
    done = script("finetune", NUM_GPUS="8", NUM_NODES="2", HOSTFILE=str(hostfile))
    assert done.returncode == 2 and "lists 1 host(s)" in done.stderr
