"""Arguments, optimiser groups, the modality-grouped sampler and checkpoint discovery (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from llava_vitsplit.checkpoints import latest_complete_checkpoint
from llava_vitsplit.train.arguments import parse_arguments
from llava_vitsplit.train.sampler import ModalityLengthGroupedSampler
from llava_vitsplit.train.trainer import build_param_groups

REQUIRED = ["--model_name_or_path", "llm", "--vision_tower", "tower", "--data_path", "d.json", "--output_dir", "out"]


def test_llava_flags_parse(tmp_path):
    model_args, data_args, training_args = parse_arguments(
        REQUIRED
        + ["--version", "plain", "--tune_mm_mlp_adapter", "True", "--mm_vision_select_layer", "-2",
           "--image_aspect_ratio", "pad", "--group_by_modality_length", "True", "--lazy_preprocess", "True",
           "--mm_projector_lr", "2e-5", "--vitsplit_task_head_lr", "1e-5", "--vitsplit_num_task_layers", "2",
           "--model_max_length", "512", "--lora_r", "8", "--mm_use_im_start_end", "False", "--warmup_ratio", "0.03"]
    )
    assert model_args.tune_mm_mlp_adapter and model_args.vitsplit_overrides() == {"num_task_layers": 2}
    prior = parse_arguments(REQUIRED + ["--vitsplit_num_prior_layers", "4"])[0].vitsplit_overrides()
    assert prior == {"num_prior_layers": 4, "selection": "uniform", "prior_layer_ids": None}
    assert data_args.image_aspect_ratio == "pad"
    assert training_args.group_by_modality_length and training_args.mm_projector_lr == 2e-5
    assert training_args.model_max_length == 512 and not training_args.remove_unused_columns
    assert training_args.warmup_steps == 0.03


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--no_such_flag", "1"], "no_such_flag"),
        (["--version", "llama_3"], "--version"),
        (["--mm_projector_type", "qformer"], "--mm_projector_type"),
        (["--mm_use_im_start_end", "True"], "not supported"),
        (["--bits", "4"], "QLoRA"),
        (["--image_aspect_ratio", "anyres"], "image_aspect_ratio"),
        (["--mm_projector_type", "mlp2x_gelu", "--vitsplit_num_prior_layers", "2"], "vitsplit"),
        (["--tune_mm_mlp_adapter", "True", "--pretrain_mm_mlp_adapter", "p"], "exclude"),
    ],
)
def test_bad_flags_are_errors(extra, message, capsys):
    with pytest.raises((ValueError, SystemExit)) as raised:
        parse_arguments(REQUIRED + extra)
    assert message in (str(raised.value) + capsys.readouterr().err)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.multi_modal_projector = nn.ModuleDict({"task_head": nn.Linear(2, 2), "fusion": nn.Linear(2, 2)})
        self.language_model = nn.Linear(2, 2)
        self.frozen = nn.Linear(2, 2).requires_grad_(False)


def test_param_groups_give_projector_and_task_head_their_rates():
    model = Tiny()
    groups = build_param_groups(
        model, base_lr=1e-3, weight_decay=0.1, decay_names={"language_model.weight"}, projector_lr=1e-4,
        task_head_lr=1e-5,
    )
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert by_id[id(model.multi_modal_projector["task_head"].weight)] == (1e-5, 0.0)
    assert by_id[id(model.multi_modal_projector["fusion"].weight)] == (1e-4, 0.0)
    assert by_id[id(model.language_model.weight)] == (1e-3, 0.1)
    assert by_id[id(model.language_model.bias)] == (1e-3, 0.0)
    assert id(model.frozen.weight) not in by_id
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        build_param_groups(model, base_lr=1e-3, weight_decay=0.0, decay_names=set())


def test_modality_sampler_groups_steps_and_is_deterministic():
    lengths = [10 + i for i in range(13)] + [-(5 + i) for i in range(7)]
    sampler = ModalityLengthGroupedSampler(lengths, batch_size=2, world_size=2, seed=3)
    order = list(sampler)
    assert sorted(order) == list(range(20))
    steps = [order[i : i + 4] for i in range(0, 20, 4)]
    mixed = [step for step in steps if len({lengths[i] > 0 for i in step}) > 1]
    assert len(mixed) <= 1 and (not mixed or mixed[0] == steps[-1])  # only the leftover step mixes
    assert list(sampler) == order
    sampler.set_epoch(1)
    assert list(sampler) != order
    with pytest.raises(ValueError, match="non-zero"):
        ModalityLengthGroupedSampler([1, 0], batch_size=1, world_size=1, seed=0)


def test_modality_sampler_balances_lengths_across_ranks():
    lengths = [100, 1, 90, 2, 80, 3, 70, 4]
    order = list(ModalityLengthGroupedSampler(lengths, batch_size=4, world_size=2, seed=0))
    rank0, rank1 = order[:4], order[4:]
    totals = sum(lengths[i] for i in rank0), sum(lengths[i] for i in rank1)
    assert abs(totals[0] - totals[1]) <= 20


def test_latest_complete_checkpoint_passes_over_a_half_written_one(tmp_path):
    assert latest_complete_checkpoint(tmp_path / "missing") is None
    for step, state in ((2, "{}"), (4, "{}"), (6, '{"trunc')):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-8").mkdir()  # nothing written yet
    assert latest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-4"


def test_feature_cache_is_refused_under_zero3():
    from llava_vitsplit.train.train import check_combination

    model_args, _, training_args = parse_arguments(
        REQUIRED + ["--use_cpu", "True", "--deepspeed", str(Path(__file__).resolve().parents[2] / "scripts" / "zero3.json"), "--vision_feature_cache", "cache"]
    )
    with pytest.raises(ValueError, match="--vision_feature_cache needs the whole tower"):
        check_combination(model_args, training_args)
