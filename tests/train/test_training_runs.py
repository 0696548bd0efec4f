"""Whole training runs on tiny random models: stage 1 -> stage 2, LoRA + merge, kill -9 + resume, 2 processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration
from llava_vitsplit.model.builder import load_pretrained_model
from llava_vitsplit.model.projector_io import KEY_PREFIX, PROJECTOR_WEIGHTS
from llava_vitsplit.train.lora import merge_lora
from llava_vitsplit.train.train import run

REPO_ROOT = Path(__file__).resolve().parents[2]


def train_argv(parts, output_dir: Path, *, stage: int, **flags) -> list[str]:
    data = parts["data"]
    argv = [
        "--model_name_or_path", str(parts["llm"]),
        "--vision_tower", str(parts["tower"]),
        "--image_folder", str(data),
        "--vitsplit_num_task_layers", "1",
        "--vitsplit_num_prior_layers", "2",
        "--vitsplit_prior_start_layer", "0",
        "--output_dir", str(output_dir),
        "--use_cpu", "True",
        "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-3",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--report_to", "none",
        "--disable_tqdm", "True",
        "--seed", "7",
    ]
    if stage == 1:
        argv += ["--version", "plain", "--data_path", str(data / "pretrain.json"), "--tune_mm_mlp_adapter", "True"]
    else:
        argv += ["--version", "v1", "--data_path", str(data / "finetune.json")]
    for name, value in flags.items():
        argv += [f"--{name}", str(value)]
    return argv


@pytest.fixture(scope="module")
def stage1(tiny_parts, tmp_path_factory):
    output = tmp_path_factory.mktemp("stage1")
    # Gradient checkpointing through the frozen LLM must still let gradients reach the projector.
    run(train_argv(tiny_parts, output, stage=1, max_steps=3, gradient_checkpointing=True))
    return output


def test_stage1_saves_only_the_trained_projector(stage1, tiny_parts):
    assert (stage1 / PROJECTOR_WEIGHTS).is_file() and (stage1 / "projector_config.json").is_file()
    assert not (stage1 / "model.safetensors").exists()
    saved = load_file(stage1 / PROJECTOR_WEIGHTS)
    assert saved and all(key.startswith(KEY_PREFIX) for key in saved)
    assert any("task_head" in key for key in saved)
    # It trained: the saved projector is not the freshly initialised one.
    torch.manual_seed(0)
    fresh, _ = LlavaViTSplitForConditionalGeneration.from_parts(
        tiny_parts["llm"], tiny_parts["tower"], projector_type="vitsplit",
        vitsplit_overrides={"num_task_layers": 1, "num_prior_layers": 2, "prior_start_layer": 0},
    )
    task_key = next(key for key in saved if "task_head" in key and key.endswith("weight"))
    initial = fresh.state_dict()[task_key]
    assert initial.shape == saved[task_key].shape and not torch.equal(initial, saved[task_key])


def test_stage2_starts_from_stage1_and_keeps_the_tower_frozen(stage1, tiny_parts, tmp_path):
    data = tiny_parts["data"]
    records = json.loads((data / "finetune.json").read_text())
    broken = data / "broken.png"
    broken.write_bytes(b"not a png")
    records.append({"id": "bad", "image": "broken.png", "conversations": records[0]["conversations"]})
    bad_data = tmp_path / "finetune_with_bad.json"
    bad_data.write_text(json.dumps(records))
    output = tmp_path / "stage2"
    run(
        train_argv(
            tiny_parts, output, stage=2, max_steps=2, pretrain_mm_mlp_adapter=stage1 / PROJECTOR_WEIGHTS,
            data_path=bad_data, skip_bad_records=True, group_by_modality_length=True,
            image_aspect_ratio="pad",
        )
    )
    tokenizer, model, image_processor, _ = load_pretrained_model(output, device="cpu")
    assert tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id
    assert image_processor is not None and (output / "trainer_state.json").is_file()
    trained_tower = model.model.vision_tower.state_dict()
    for key, tensor in AutoModel.from_pretrained(tiny_parts["tower"]).state_dict().items():
        assert torch.equal(trained_tower[key], tensor), key
    issues = json.loads((output / "data_issues.json").read_text())
    assert [issue["record_id"] for issue in issues["skipped"]] == ["bad"]


def test_stage2_trains_on_records_with_two_images(stage1, tiny_parts, tmp_path):
    """Two images per conversation, one in the first turn and one in a later turn, mixed with
    one-image and text-only records: the run trains (finite, falling loss) and saves a model."""
    records = json.loads((tiny_parts["data"] / "finetune.json").read_text())
    pairs = [
        {"id": f"pair{index}", "image": [f"img{index}.png", f"img{index + 1}.png"], "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is this square?"},
            {"from": "gpt", "value": record["conversations"][1]["value"]},
            {"from": "human", "value": "<image>\nAnd this one?"},
            {"from": "gpt", "value": records[index + 1]["conversations"][1]["value"]}]}
        for index, record in enumerate(records[:8])
    ]
    data_path = tmp_path / "two_images.json"
    data_path.write_text(json.dumps(pairs + records[:4]))
    output = tmp_path / "stage2-pairs"
    run(train_argv(tiny_parts, output, stage=2, max_steps=6, data_path=data_path,
                   pretrain_mm_mlp_adapter=stage1 / PROJECTOR_WEIGHTS))
    losses = [entry["loss"] for entry in json.loads((output / "trainer_state.json").read_text())["log_history"]
              if "loss" in entry]
    assert len(losses) == 6 and all(loss == loss and loss < 100 for loss in losses)  # finite
    assert min(losses[-2:]) < losses[0]
    _, model, _, _ = load_pretrained_model(output, device="cpu")
    assert model.config.image_token_id is not None


def test_stage2_with_a_frozen_llm_steps_through_text_only_batches(stage1, tiny_parts, tmp_path):
    """`--freeze_backbone`: a text-only batch reaches no trainable parameter. Its step runs with zero
    gradients (all ranks still meet in backward) instead of failing there, and changes nothing."""
    records = json.loads((tiny_parts["data"] / "finetune.json").read_text())
    text_only = [record for record in records if "image" not in record]
    assert text_only
    data_path = tmp_path / "text_only.json"
    data_path.write_text(json.dumps((text_only * 8)[:8]))
    output = tmp_path / "stage2-frozen-llm"
    run(train_argv(tiny_parts, output, stage=2, max_steps=2, data_path=data_path, freeze_backbone=True,
                   weight_decay=0.0, pretrain_mm_mlp_adapter=stage1 / PROJECTOR_WEIGHTS))
    logged = [entry for entry in json.loads((output / "trainer_state.json").read_text())["log_history"] if "loss" in entry]
    assert len(logged) == 2 and all(entry["grad_norm"] == 0.0 for entry in logged)
    _, model, _, _ = load_pretrained_model(output, device="cpu")
    state = model.state_dict()
    for key, tensor in load_file(stage1 / PROJECTOR_WEIGHTS).items():
        assert torch.equal(state[key], tensor), key


def test_stage2_loads_the_stage1_projector_exactly(stage1, tiny_parts, tmp_path):
    from llava_vitsplit.train.arguments import parse_arguments
    from llava_vitsplit.train.model_setup import build_model

    model_args, _, training_args = parse_arguments(
        train_argv(tiny_parts, tmp_path, stage=2, pretrain_mm_mlp_adapter=stage1)
    )
    model, _, _ = build_model(model_args, training_args)
    saved = load_file(stage1 / PROJECTOR_WEIGHTS)
    state = model.state_dict()
    for key, tensor in saved.items():
        assert torch.equal(state[key], tensor), key


def test_lora_trains_and_merges_into_an_equivalent_model(stage1, tiny_parts, tmp_path):
    from peft import PeftModel

    from llava_vitsplit.train.model_setup import BuildSpec

    output = tmp_path / "lora"
    run(
        train_argv(
            tiny_parts, output, stage=2, max_steps=2, pretrain_mm_mlp_adapter=stage1 / PROJECTOR_WEIGHTS,
            lora_enable=True, lora_r=4, lora_alpha=8, lora_dropout=0.0, mm_projector_lr=1e-3,
        )
    )
    assert (output / "adapter_model.safetensors").is_file()
    merged_dir = merge_lora(output, tmp_path / "merged")
    merged = LlavaViTSplitForConditionalGeneration.from_pretrained(merged_dir).eval()
    base, processor = BuildSpec.load(output).build()
    adapted = PeftModel.from_pretrained(base, str(output)).eval()
    inputs = processor(
        images=[tiny_parts["data"] / "img0.png"], text=["<image>\nWhat is in the image?"], return_tensors="pt"
    )
    with torch.no_grad():
        torch.testing.assert_close(merged(**inputs).logits, adapted(**inputs).logits, atol=1e-4, rtol=1e-4)
    fresh, _ = BuildSpec.load(output).build()
    key = next(k for k, _ in merged.named_parameters() if "language_model" in k and "q_proj" in k)
    assert not torch.equal(dict(merged.named_parameters())[key], dict(fresh.named_parameters())[key])


RESUME_CASES = {
    "stage1": dict(stage=1),
    "full": dict(stage=2),
    "lora": dict(stage=2, lora_enable=True, lora_r=4, lora_alpha=8, lora_dropout=0.0),
}
FINAL_WEIGHTS = {"stage1": PROJECTOR_WEIGHTS, "full": "model.safetensors", "lora": "adapter_model.safetensors"}


@pytest.mark.parametrize("case", RESUME_CASES)
def test_rerun_resumes_from_the_latest_checkpoint_to_the_same_weights(case, stage1, tiny_parts, tmp_path):
    flags = dict(RESUME_CASES[case], max_steps=4, save_strategy="steps", save_steps=2)
    if flags["stage"] == 2:
        flags["pretrain_mm_mlp_adapter"] = stage1 / PROJECTOR_WEIGHTS
    output = tmp_path / "run"
    run(train_argv(tiny_parts, output, **flags))
    expected = load_file(output / FINAL_WEIGHTS[case])
    # Back to the state after step 2, as if the run had stopped there; the same command resumes.
    shutil.rmtree(output / "checkpoint-4")
    (output / FINAL_WEIGHTS[case]).unlink()
    run(train_argv(tiny_parts, output, **flags))
    state = json.loads((output / "checkpoint-4" / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3, 4]
    actual = load_file(output / FINAL_WEIGHTS[case])
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def _subprocess_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")


@pytest.mark.slow  # three training processes in a row: about 45 s on 2 cores
def test_kill_9_then_rerun_resumes_to_the_same_final_weights(stage1, tiny_parts, tmp_path):
    def argv(output: Path) -> list[str]:
        return [sys.executable, "-m", "llava_vitsplit.train"] + train_argv(
            tiny_parts, output, stage=2, max_steps=10, save_strategy="steps", save_steps=1,
            pretrain_mm_mlp_adapter=stage1 / PROJECTOR_WEIGHTS,
        )

    uninterrupted = tmp_path / "uninterrupted"
    subprocess.run(argv(uninterrupted), check=True, env=_subprocess_env(), cwd=REPO_ROOT, capture_output=True)

    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(argv(interrupted), env=_subprocess_env(), cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (interrupted / "checkpoint-3" / "trainer_state.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its third checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (interrupted / "model.safetensors").exists()

    resumed = subprocess.run(argv(interrupted), env=_subprocess_env(), cwd=REPO_ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr
    expected, actual = load_file(uninterrupted / "model.safetensors"), load_file(interrupted / "model.safetensors")
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def _losses(output: Path) -> list[float]:
    state = json.loads((output / "checkpoint-4" / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.mark.slow  # three training processes: about 40 s on 2 cores
def test_two_processes_give_the_loss_curve_of_one(stage1, tiny_parts, tmp_path):
    common = dict(max_steps=4, save_strategy="steps", save_steps=4, pretrain_mm_mlp_adapter=stage1 / PROJECTOR_WEIGHTS,
                  group_by_modality_length=True)
    one = tmp_path / "one"
    subprocess.run(
        [sys.executable, "-m", "llava_vitsplit.train"]
        + train_argv(tiny_parts, one, stage=2, **common, per_device_train_batch_size=4),
        check=True, env=_subprocess_env(), cwd=REPO_ROOT, capture_output=True,
    )
    two = tmp_path / "two"
    launched = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "llava_vitsplit.train"]
        + train_argv(tiny_parts, two, stage=2, **common, per_device_train_batch_size=2),
        env=_subprocess_env(), cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "2 process(es) x 2 per device x 1 accumulation = global batch 4" in launched.stderr
    torch.testing.assert_close(_losses(two), _losses(one), rtol=1e-4, atol=1e-5)
    expected, actual = load_file(one / "model.safetensors"), load_file(two / "model.safetensors")
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # DeepSpeed's start-up (and, the first time, a ~3 min JIT build of its CPU comm op)
@pytest.mark.parametrize("config,stage", [("zero3", 1), ("zero2", 2), ("zero3", 2)])
def test_deepspeed_runs_match_a_plain_run(config, stage, stage1, tiny_parts, tmp_path):
    """ZeRO shards parameters (stage 3) or optimiser state (stage 2) over ranks; the saved weights
    must be whole and equal to a run without DeepSpeed (stage 1: the projector alone)."""
    flags = dict(max_steps=2)
    if stage == 2:
        flags["pretrain_mm_mlp_adapter"] = stage1 / PROJECTOR_WEIGHTS
    plain = tmp_path / "plain"
    run(train_argv(tiny_parts, plain, stage=stage, **flags))
    sharded = tmp_path / config
    env = dict(_subprocess_env(), RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29519")
    launched = subprocess.run(
        [sys.executable, "-m", "llava_vitsplit.train"]
        + train_argv(tiny_parts, sharded, stage=stage, deepspeed=REPO_ROOT / "scripts" / f"{config}.json", **flags),
        env=env, cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    weights = PROJECTOR_WEIGHTS if stage == 1 else "model.safetensors"
    expected, actual = load_file(plain / weights), load_file(sharded / weights)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert actual[key].shape == expected[key].shape, key
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-4, atol=1e-5)


def _run_losses(output: Path) -> list[float]:
    state = json.loads((output / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.mark.slow  # three training runs of two epochs: about 90 s on a loaded 2-core machine
def test_feature_cache_and_padding_free_runs_learn_what_a_plain_run_learns(stage1, tiny_parts, tmp_path):
    """Through the entry point users call: two epochs, the second read from the cache."""
    common = dict(num_train_epochs=2, pretrain_mm_mlp_adapter=stage1 / PROJECTOR_WEIGHTS)
    run(train_argv(tiny_parts, tmp_path / "plain", stage=2, **common))
    cache = tmp_path / "features"
    run(train_argv(tiny_parts, tmp_path / "cached", stage=2, vision_feature_cache=cache, **common))
    run(train_argv(tiny_parts, tmp_path / "flat", stage=2, padding_free=True, **common))
    records = json.loads((tiny_parts["data"] / "finetune.json").read_text())
    images = {(tiny_parts["data"] / record["image"]).read_bytes() for record in records if "image" in record}
    assert len(list(cache.rglob("*.safetensors"))) == len(images)  # one entry per distinct image
    expected = _run_losses(tmp_path / "plain")
    assert len(expected) >= 2
    for variant in ("cached", "flat"):
        assert _run_losses(tmp_path / variant) == pytest.approx(expected, rel=1e-4), variant
