"""Local copies of the Hub benchmark datasets that our lmms-eval tasks (eval/*_local) read.

Each benchmark is one parquet file per split, with the Hub dataset's columns and its images
embedded as bytes, exactly as the Hub's own parquet shards store them; lmms-eval then decodes the
`image` column to PIL like it does for the Hub. The files live under a data root, by default the
repository's `eval/data/` (the task YAMLs point there; link it elsewhere if the disk is small):

    eval/data/pope/test.parquet            lmms-lab/POPE, default config, split test
    eval/data/vqav2/validation.parquet     lmms-lab/VQAv2, split validation
    eval/data/mmbench_en/dev.parquet       lmms-lab/MMBench, config en, split dev
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchmarkData:
    """Where a benchmark comes from on the Hub and where its local copy goes."""

    name: str
    hub_id: str
    config: str | None
    split: str
    required_columns: tuple[str, ...]

    @property
    def relative_path(self) -> Path:
        return Path(self.name) / f"{self.split}.parquet"


BENCHMARKS = {
    "pope": BenchmarkData(
        "pope", "lmms-lab/POPE", None, "test", ("question_id", "question", "answer", "category", "image")
    ),
    "vqav2": BenchmarkData(
        "vqav2",
        "lmms-lab/VQAv2",
        None,
        "validation",
        ("question_id", "question", "answers", "answer_type", "image"),
    ),
    "mmbench_en": BenchmarkData(
        "mmbench_en",
        "lmms-lab/MMBench",
        "en",
        "dev",
        ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image"),
    ),
}
BENCHMARK_ALIASES = {"pope": "pope", "vqav2": "vqav2", "mmbench": "mmbench_en", "mmbench_en": "mmbench_en"}


def _load(source: str, config: str | None, split: str):
    import datasets

    source_path = Path(source)
    if (source_path / "dataset_dict.json").is_file():  # a DatasetDict.save_to_disk folder
        return datasets.load_from_disk(str(source_path))[split]
    if (source_path / "state.json").is_file():  # a Dataset.save_to_disk folder
        return datasets.load_from_disk(str(source_path))
    # A Hub id (needs network) or a local snapshot of the Hub repository.
    return datasets.load_dataset(source, name=config, split=split)


def export_path(benchmark: str, data_root: str | Path) -> Path:
    """Where `export_benchmark` writes `benchmark` under `data_root` (the eval/ task YAMLs read it there)."""
    if benchmark not in BENCHMARK_ALIASES:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {sorted(BENCHMARK_ALIASES)}")
    return Path(data_root) / BENCHMARKS[BENCHMARK_ALIASES[benchmark]].relative_path


def export_benchmark(
    benchmark: str, source: str, data_root: str | Path, config: str | None = None, split: str | None = None
) -> Path:
    """Copy `benchmark`'s evaluation split from `source` (a Hub id, a local snapshot of the Hub
    repository, or a `save_to_disk` folder) into `data_root`. `config`/`split` override the Hub
    defaults when the source is organised differently. Returns the written file."""
    from datasets import Image
    from datasets.table import embed_table_storage

    output = export_path(benchmark, data_root)
    spec = BENCHMARKS[BENCHMARK_ALIASES[benchmark]]
    dataset = _load(source, config if config is not None else spec.config, split or spec.split)
    missing = [column for column in spec.required_columns if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{source}: the {spec.name} data lacks the columns {missing} (has {dataset.column_names})"
        )
    if not isinstance(dataset.features["image"], Image):
        raise ValueError(
            f"{source}: the 'image' column must be an image feature, got {dataset.features['image']}"
        )
    # Images read from files are stored as paths; put their bytes into the table like the Hub does.
    dataset = dataset.with_format("arrow").map(embed_table_storage, batched=True, desc="Embedding images")
    output.parent.mkdir(parents=True, exist_ok=True)
    dataset.with_format(None).to_parquet(str(output))
    return output
