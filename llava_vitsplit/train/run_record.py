"""The arguments of a training run, recorded beside its checkpoints and checked on resume.

A rerun in an output folder continues the run found there. If the command differs from the one
that wrote the folder (other data, learning rate, K_t ...), continuing would silently mix two runs
or fail deep inside `load_state_dict`; instead the differences are listed and the run stops.

* `IGNORED` fields never matter to the trained weights (where logs go, progress bars, ranks).
* `FIXED` fields define what is trained (model, data, projector layout, what is frozen): a change
  always needs a new `--output_dir`.
* Any other difference is refused unless named in `--allow_changed_args a,b` (e.g. logging or
  saving frequency, or `max_steps` to extend a finished run).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import TrainerCallback

from ..checkpoints import TRAINER_STATE, is_complete, latest_complete_checkpoint
from .arguments import DataArguments, ModelArguments, TrainingArguments

RUN_ARGUMENTS_FILE = "run_arguments.json"

IGNORED = frozenset({
    "output_dir", "logging_dir", "run_name", "resume_from_checkpoint", "allow_changed_args", "local_rank",
    "disable_tqdm", "report_to", "log_level", "log_level_replica", "log_on_each_node", "project",
    "hub_token", "hub_model_id", "hub_private_repo", "hub_revision", "hub_strategy", "hub_always_push",
    "push_to_hub", "trackio_bucket_id", "trackio_space_id", "trackio_static_space_id", "ddp_timeout",
    "dataloader_num_workers", "dataloader_persistent_workers", "dataloader_pin_memory",
    "dataloader_prefetch_factor", "dataloader_multiprocessing_context", "skip_memory_metrics",
    "per_device_eval_batch_size", "do_train", "do_eval", "do_predict", "cache_dir", "lazy_preprocess",
    "vision_feature_cache",
})
FIXED = frozenset({
    *(name for name in ModelArguments.__dataclass_fields__),
    "data_path", "data_sha256", "image_folder", "image_aspect_ratio", "skip_bad_records",
    "lora_enable", "lora_r", "lora_alpha", "lora_dropout", "lora_bias", "bits", "freeze_mm_mlp_adapter",
    "model_max_length", "seed",
})
PATH_FIELDS = ("model_name_or_path", "vision_tower", "pretrain_mm_mlp_adapter", "data_path", "image_folder", "deepspeed")


def file_sha256(path: str | Path) -> str | None:
    """sha256 of a file's bytes (None when it is not a file); data files are read once per run."""
    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RunArguments:
    """The command's arguments as one flat JSON-able dict (paths made absolute, data hashed)."""

    values: dict

    @classmethod
    def from_arguments(
        cls, model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments
    ) -> RunArguments:
        values = {**asdict(model_args), **asdict(data_args), **training_args.to_dict()}
        for name in PATH_FIELDS:
            if isinstance(values.get(name), (str, Path)) and values[name]:  # (--deepspeed may be a dict)
                values[name] = str(Path(values[name]).resolve())
        values["data_sha256"] = file_sha256(data_args.data_path)
        values["world_size"] = training_args.world_size  # the global batch depends on it
        return cls(json.loads(json.dumps(values, default=str)))  # what a reload of the file gives

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / RUN_ARGUMENTS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.values, indent=1, sort_keys=True) + "\n")
        temporary.replace(path)  # never a half-written record
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunArguments:
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: unreadable run record ({error}); it was written by the run in that folder") from error
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a run record is a JSON object, found {type(values).__name__}")
        return cls(values)

    def differences(self, recorded: RunArguments) -> dict[str, tuple]:
        """`{field: (recorded value, this command's value)}` for every compared field that differs."""
        names = (set(self.values) | set(recorded.values)) - IGNORED
        return {
            name: (recorded.values.get(name), self.values.get(name))
            for name in sorted(names)
            if recorded.values.get(name) != self.values.get(name)
        }


def parse_allowed(allow_changed_args: str) -> set[str]:
    """`--allow_changed_args a,b` as a set; a field that defines the run cannot be allowed."""
    allowed = {name.strip() for name in allow_changed_args.split(",") if name.strip()}
    fixed = sorted(allowed & FIXED)
    if fixed:
        raise ValueError(
            f"--allow_changed_args {','.join(fixed)}: these define the run (model, data, what trains) and "
            "cannot change on resume; start a new --output_dir"
        )
    return allowed


def check_same_run(current: RunArguments, record_path: Path, allow_changed_args: str = "") -> None:
    """Refuse to continue the run recorded at `record_path` with different arguments."""
    allowed = parse_allowed(allow_changed_args)
    changed = current.differences(RunArguments.load(record_path))
    refused = {name: values for name, values in changed.items() if name not in allowed}
    if not refused:
        return
    lines = [f"  --{name}: {old!r} in the recorded run, {new!r} now" for name, (old, new) in refused.items()]
    fixed = sorted(set(refused) & FIXED)
    advice = "use a new --output_dir (or delete this one) to start another run"
    if set(refused) - FIXED:
        advice += (
            f"; to continue it with the changes that are safe, add --allow_changed_args "
            f"{','.join(sorted(set(refused) - FIXED))}"
        )
    if fixed:
        advice += f" ({', '.join(fixed)} define the run and can never change)"
    raise ValueError(
        f"{record_path.parent} holds another run: its arguments ({record_path}) differ from this command's:\n"
        + "\n".join(lines) + f"\n{advice}"
    )


def resume_checkpoint(output_dir: Path, resume_from_checkpoint: str | None) -> Path | None:
    """The checkpoint this command continues, as the HF Trainer reads `--resume_from_checkpoint`:
    a checkpoint folder (it must be complete), or unset/"True" for the latest complete one in
    `--output_dir` (None when there is none: a fresh run)."""
    if resume_from_checkpoint is None or resume_from_checkpoint.lower() == "true":
        return latest_complete_checkpoint(output_dir)
    if resume_from_checkpoint.lower() == "false":
        raise ValueError(
            "--resume_from_checkpoint False: a rerun always continues the run in --output_dir; "
            "give a new --output_dir to start afresh"
        )
    checkpoint = Path(resume_from_checkpoint)
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {checkpoint}: no such checkpoint folder")
    if not is_complete(checkpoint):
        raise ValueError(
            f"--resume_from_checkpoint {checkpoint}: not a complete checkpoint (no readable {TRAINER_STATE}; "
            "the run stopped while saving it, or it is not a checkpoint folder)"
        )
    return checkpoint


def recorded_arguments(checkpoint: Path) -> Path | None:
    """The run record of a checkpoint: its own copy, else the one of the run folder holding it."""
    for folder in (checkpoint, checkpoint.parent):
        if (folder / RUN_ARGUMENTS_FILE).is_file():
            return folder / RUN_ARGUMENTS_FILE
    return None


def check_resume(current: RunArguments, output_dir: Path, checkpoint: Path | None, allow_changed_args: str = "") -> None:
    """Refuse when this command would continue, or write into, a run with other arguments."""
    records = []
    if checkpoint is not None:
        record = recorded_arguments(checkpoint)
        if record is None:
            raise ValueError(
                f"{checkpoint} has no {RUN_ARGUMENTS_FILE} (nor has {checkpoint.parent}): nothing says which "
                "arguments trained it, so this command cannot be checked against it; "
                "start a new --output_dir"
            )
        records.append(record)
    if (output_dir / RUN_ARGUMENTS_FILE).is_file():
        records.append(output_dir / RUN_ARGUMENTS_FILE)
    for record in dict.fromkeys(path.resolve() for path in records):
        check_same_run(current, record, allow_changed_args)


class RecordInCheckpoints(TrainerCallback):
    """Copies the run record into every checkpoint, so a checkpoint moved elsewhere still says what trained it."""

    def __init__(self, record: Path) -> None:
        self.record = record

    def on_save(self, args, state, control, **kwargs):
        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if args.should_save and checkpoint.is_dir():
            shutil.copyfile(self.record, checkpoint / RUN_ARGUMENTS_FILE)
        return control
