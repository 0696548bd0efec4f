"""What wrote an answers file: the model's identity and the generation settings.

Every answer records its `writer`. Resuming an answers file with another model or other settings
would mix two runs' answers in one score, so it is refused with the differences; so is merging
chunk files written by different writers.

The model's identity is a fingerprint of its folder (and of `--model-base`'s): the bytes of its
config files and, for each weights file, its name, size, header and 16 blocks of 64 KiB spread
over it. Hashing every byte of a 14 GB checkpoint would cost each chunk process a minute; the
sampled blocks already differ between any two trained checkpoints (training moves every weight),
and a copy of a folder keeps its fingerprint wherever it lies.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIG_FILES = (
    "config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
    "projector_config.json", "adapter_config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
SAMPLED_BLOCKS = 16
BLOCK_BYTES = 64 * 1024
HEADER_BYTES = 1024 * 1024


class MixedWritersError(ValueError):
    """Answers of different models or settings would end up in one file."""


def _sample_file(digest, path: Path) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}\0{size}\0".encode())
    with open(path, "rb") as handle:
        if size <= HEADER_BYTES + SAMPLED_BLOCKS * BLOCK_BYTES:
            digest.update(handle.read())
            return
        digest.update(handle.read(HEADER_BYTES))
        for index in range(SAMPLED_BLOCKS):
            handle.seek(HEADER_BYTES + index * (size - HEADER_BYTES - BLOCK_BYTES) // (SAMPLED_BLOCKS - 1))
            digest.update(handle.read(BLOCK_BYTES))


def model_fingerprint(folder: str | os.PathLike) -> str:
    """A sha256 (hex) over a model folder's config files and sampled weights (see the module doc);
    `folder` may also be one weights file (a stage-1 projector)."""
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"model folder not found: {folder}")
    digest = hashlib.sha256()
    if folder.is_file():
        _sample_file(digest, folder)
        return digest.hexdigest()
    files = [folder / name for name in CONFIG_FILES if (folder / name).is_file()]
    files += sorted(path for path in folder.iterdir() if path.suffix in WEIGHT_SUFFIXES and path.is_file())
    if not files:
        raise FileNotFoundError(f"{folder} holds no config or weights file: not a model folder")
    for path in files:
        _sample_file(digest, path)
    return digest.hexdigest()


def settings_record(settings) -> dict:
    """Generation settings (a transformers ``GenerationConfig``, or a dict) as a JSON-able dict. The
    transformers version is left out: an upgrade does not make earlier answers "other settings"."""
    values = settings.to_diff_dict() if hasattr(settings, "to_diff_dict") else dict(settings)
    values.pop("transformers_version", None)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}


@dataclass(frozen=True)
class AnswerWriterIdentity:
    """`model`/`base`: `{"name", "fingerprint"}` (names are for messages; fingerprints are compared);
    `generation`: the decoding settings and conversation template."""

    model: dict
    base: dict | None
    generation: dict

    @classmethod
    def of(
        cls, model_path: str | os.PathLike, model_base: str | os.PathLike | None, generation: dict
    ) -> AnswerWriterIdentity:
        def identity(folder):
            folder = Path(folder).resolve()
            return {"name": str(folder), "fingerprint": model_fingerprint(folder)}

        return cls(identity(model_path), identity(model_base) if model_base else None, dict(generation))

    def to_record(self) -> dict:
        return asdict(self)



def answers_folder_name(model_path: str | os.PathLike, model_base: str | os.PathLike | None = None) -> str:
    """`<folder name>-<12 hex digits of the model's (and base's) fingerprint>`: the scripts' answers folder."""
    digest = hashlib.sha256(model_fingerprint(model_path).encode())
    if model_base:
        digest.update(model_fingerprint(model_base).encode())
    return f"{Path(model_path).resolve().name}-{digest.hexdigest()[:12]}"


def writer_differences(recorded: dict, current: dict) -> list[str]:
    """What differs between two answers' `writer` records, in words (empty when the same model and settings)."""
    problems = []
    for role in ("model", "base"):
        old, new = recorded.get(role), current.get(role)
        if (old or {}).get("fingerprint") != (new or {}).get("fingerprint"):
            problems.append(f"{role}: {_describe(old)} vs {_describe(new)}")
    old_settings, new_settings = recorded.get("generation", {}), current.get("generation", {})
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            problems.append(f"{key}: {old_settings.get(key)!r} vs {new_settings.get(key)!r}")
    return problems


def _describe(identity: dict | None) -> str:
    return f"{identity['name']} (fingerprint {identity['fingerprint'][:12]})" if identity else "none"


def _compare(first: dict | None, second: dict | None, first_source: str, second_source: str) -> list[str]:
    if first is None or second is None:
        if first is None and second is None:
            return []
        unrecorded = first_source if first is None else second_source
        return [f"{unrecorded} does not say what wrote it (written before answers recorded their writer)"]
    return writer_differences(first, second)


def check_same_writer(path: Path, answers: dict, writer: dict) -> None:
    """Refuse to add `writer`'s answers to a file holding answers written otherwise."""
    for question_id, record in answers.items():
        problems = _compare(record.get("writer"), writer, f"the answer to question_id {question_id!r}", "this run")
        if problems:
            raise MixedWritersError(
                f"{path}: it holds answers of another model or other settings, so resuming would mix two runs "
                "in one score. Existing vs now:\n  " + "\n  ".join(problems)
                + "\nanswer into a new --answers-file (or delete this one)"
            )


def check_one_writer(answers_by_file) -> None:
    """Refuse to merge answer files (`(path, {question_id: record})` pairs) not all written by one writer."""
    first_source = first_writer = None
    for path, answers in answers_by_file:
        for question_id, record in answers.items():
            source = f"{path} (question_id {question_id!r})"
            if first_source is None:
                first_source, first_writer = source, record.get("writer")
                continue
            problems = _compare(first_writer, record.get("writer"), first_source, source)
            if problems:
                raise MixedWritersError(
                    f"{first_source} and {source} were written by different models or settings; merging would "
                    "mix two runs in one score:\n  " + "\n  ".join(problems)
                )
