"""The LLaMA-2 / Vicuna-v1.5 tokenizer (32000-token SentencePiece vocabulary) as a transformers folder.

The `llama-cpp-python==0.3.36` source archive vendors llama.cpp's vocabulary test files:
`ggml-vocab-llama-spm.gguf` (the vocabulary, no weights) and `.inp`/`.out` reference tokenisations
made with SentencePiece. transformers' GGUF tokenizer uses a `Metaspace` pre-tokenizer, which skips
the dummy-prefix space when the text already starts with a space, so it matches only 31 of the 46
references (every miss involves a leading space). SentencePiece always prepends "▁", so we set the
normalizer to do exactly that (Prepend "▁", then spaces -> "▁") and drop the pre-tokenizer; then all
46 match, after saving and reloading too. Like LLaVA's slow Llama tokenizer, text after a special
token (e.g. after "</s>" in a `v1` conversation) also gets its own "▁" prefix.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from llava_vitsplit.quickstart.weights.archive import extract_members
from llava_vitsplit.quickstart.weights.cache import build_once, cache_root
from llava_vitsplit.quickstart.weights.pip_fetch import download_package

PACKAGE = "llama-cpp-python"
VERSION = "0.3.36"
VOCAB_MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
REFERENCE_INPUTS = VOCAB_MEMBER + ".inp"
REFERENCE_OUTPUTS = VOCAB_MEMBER + ".out"
FOLDER_NAME = "vicuna-tokenizer"
REFERENCES_SUBDIR = "references"
# llama.cpp's test-tokenizer-0 format: texts end with this line; outputs are one line per text.
REFERENCE_SEPARATOR = "\n__ggml_vocab_test__\n"

logger = logging.getLogger(__name__)


def read_reference_tokenizations(
    inp_path: str | os.PathLike, out_path: str | os.PathLike
) -> list[tuple[str, list[int]]]:
    """[(text, expected token ids without BOS)] from llama.cpp's `.inp`/`.out` vocabulary test files."""
    texts = Path(inp_path).read_text(encoding="utf-8").split(REFERENCE_SEPARATOR)
    lines = Path(out_path).read_text(encoding="utf-8").split("\n")
    if texts[-1] != "" or lines[-1] != "":
        raise ValueError(f"{inp_path} / {out_path}: expected each test to end with its separator / newline")
    texts, lines = texts[:-1], lines[:-1]
    if len(texts) != len(lines):
        raise ValueError(f"{inp_path} has {len(texts)} texts but {out_path} has {len(lines)} tokenizations")
    try:
        return [(text, [int(tok) for tok in line.split()]) for text, line in zip(texts, lines, strict=True)]
    except ValueError as error:
        raise ValueError(f"{out_path}: a line is not space-separated token ids ({error})") from error


def reference_mismatches(
    tokenizer, references: list[tuple[str, list[int]]]
) -> list[tuple[str, list[int], list[int]]]:
    """[(text, expected, got)] for every reference the tokenizer (without special tokens) disagrees with."""
    mismatches = []
    for text, expected in references:
        got = tokenizer.encode(text, add_special_tokens=False)
        if got != expected:
            mismatches.append((text, expected, got))
    return mismatches


def make_sentencepiece_compatible(tokenizer) -> None:
    """Prepend the dummy-prefix "▁" to every text as SentencePiece does (see the module docstring)."""
    from tokenizers import normalizers

    backend = tokenizer.backend_tokenizer
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.pre_tokenizer = None


def _gguf_context_length(gguf_path: Path) -> int:
    from gguf import GGUFReader

    field = GGUFReader(gguf_path).fields.get("llama.context_length")
    if field is None:
        raise ValueError(f"{gguf_path}: no llama.context_length in the GGUF metadata")
    return int(field.contents())


def build_vicuna_tokenizer(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Save a SentencePiece-exact tokenizer for the GGUF vocabulary to `out_dir` (pad = UNK, as in LLaVA)."""
    from transformers import AutoTokenizer

    from llava_vitsplit.model.tokenizer import set_llava_pad_token

    gguf_path = Path(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    make_sentencepiece_compatible(tokenizer)
    set_llava_pad_token(tokenizer)
    tokenizer.model_max_length = _gguf_context_length(gguf_path)  # 4096 for LLaMA-2 / Vicuna-v1.5
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)


def ensure_vicuna_tokenizer(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Vicuna-v1.5 tokenizer folder in the cache (with `references/`), building it on first use.

    The build reloads the saved tokenizer and fails unless it reproduces every reference tokenisation.
    """
    root = cache_root(cache_dir)

    def build(work_dir: Path) -> None:
        from transformers import AutoTokenizer

        archive = download_package(PACKAGE, VERSION, root / "downloads", source=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            files = extract_members(archive, [VOCAB_MEMBER, REFERENCE_INPUTS, REFERENCE_OUTPUTS], Path(tmp))
            logger.info("building the Vicuna tokenizer from %s", VOCAB_MEMBER)
            build_vicuna_tokenizer(files[VOCAB_MEMBER], work_dir)
            references_dir = work_dir / REFERENCES_SUBDIR
            references_dir.mkdir()
            for member in (REFERENCE_INPUTS, REFERENCE_OUTPUTS):
                shutil.copy2(files[member], references_dir / files[member].name)
        references = read_reference_tokenizations(*reference_files(work_dir))
        mismatches = reference_mismatches(AutoTokenizer.from_pretrained(work_dir), references)
        if mismatches:
            text, expected, got = mismatches[0]
            raise ValueError(
                f"the saved Vicuna tokenizer disagrees with {len(mismatches)} of {len(references)} "
                f"SentencePiece references, e.g. {text!r}: expected {expected}, got {got}"
            )

    provenance = {
        "source": f"{PACKAGE}=={VERSION} (source archive)",
        "file": VOCAB_MEMBER,
        "licence": "vocabulary of LLaMA 2 (Llama 2 Community License); llama.cpp test files MIT",
        "converted_with": {"transformers": version("transformers")},
    }
    return build_once(root / FOLDER_NAME, build, provenance)


def reference_files(tokenizer_dir: str | os.PathLike) -> tuple[Path, Path]:
    """The (`.inp`, `.out`) reference files kept beside a tokenizer built by `ensure_vicuna_tokenizer`."""
    references_dir = Path(tokenizer_dir) / REFERENCES_SUBDIR
    return (
        references_dir / Path(REFERENCE_INPUTS).name,
        references_dir / Path(REFERENCE_OUTPUTS).name,
    )
