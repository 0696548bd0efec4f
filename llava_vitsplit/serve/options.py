"""Command-line options of the web demo, the terminal chat and the API server, and the default checkpoint.

Light on purpose: `llava-vitsplit --help` imports this, not torch or gradio.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

from llava_vitsplit.data.conversation import TEMPLATES

# LLaVA's demo defaults for a chat reply (`generation_settings.chat_generation_config`).
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.7
DEFAULT_MAX_NEW_TOKENS = 512

# Where `scripts/finetune.sh` (the CPU quick start) writes its stage-2 model, under the same
# QUICKSTART_CHECKPOINTS folder; DEMO_CHECKPOINTS and demo-finetune are the names before the rename.
QUICKSTART_CHECKPOINT = Path("quickstart-finetune")
FORMER_QUICKSTART_CHECKPOINT = Path("demo-finetune")
REPO_ROOT = Path(__file__).resolve().parents[2]


def quickstart_checkpoint() -> Path:
    """The quick start's trained model: relative to the working directory, else to the repository."""
    default = os.environ.get("DEMO_CHECKPOINTS", "playground/checkpoints")
    checkpoints = Path(os.environ.get("QUICKSTART_CHECKPOINTS", default))
    folder = checkpoints / QUICKSTART_CHECKPOINT
    roots = [checkpoints] if checkpoints.is_absolute() else [Path.cwd() / checkpoints, REPO_ROOT / checkpoints]
    candidates = [root / name for root in roots for name in (QUICKSTART_CHECKPOINT, FORMER_QUICKSTART_CHECKPOINT)]
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    raise SystemExit(
        f"No --model-path given, and the quick start's model is not at {folder} (looked in "
        f"{', '.join(str(root) for root in roots)}).\n"
        "Train it on the CPU with `bash scripts/quickstart.sh` (or scripts/pretrain.sh, then scripts/finetune.sh), "
        "or pass --model-path FOLDER (and --model-base BASE for LoRA or projector-only folders)."
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-path", default=None,
                        help="trained model folder (default: the quick start's playground/checkpoints/quickstart-finetune)")
    parser.add_argument("--model-base", default=None,
                        help="base LLM folder, for LoRA or projector-only --model-path folders (as in LLaVA)")
    parser.add_argument("--conv-mode", default="v1", choices=sorted(TEMPLATES),
                        help="conversation template the model was trained with (default: v1)")
    parser.add_argument("--device", default=None,
                        help="cuda, cuda:1, cpu, ... (default: cuda when available, else cpu; fp32 on cpu, bf16/fp16 on gpu)")
    quantise = parser.add_mutually_exclusive_group()
    quantise.add_argument("--load-8bit", action="store_true", help="8-bit weights (GPU, needs bitsandbytes)")
    quantise.add_argument("--load-4bit", action="store_true", help="4-bit weights (GPU, needs bitsandbytes)")


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on")
    parser.add_argument("--max-queue", type=int, default=64,
                        help="requests waiting for the model beyond this many are refused")
    add_generation_arguments(parser, "the sliders' starting values")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """`llava-vitsplit serve`: the model, where to listen, who may call, and what one request may hold."""
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--api-key", default=None,
                        help="require 'Authorization: Bearer KEY' (default: $LLAVA_VITSPLIT_API_KEY, else no key)")
    parser.add_argument("--served-model-name", default=None,
                        help="the model name clients send (default: the checkpoint folder's name)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-request-bytes", type=int, default=20 * 2**20, help="largest request body (default 20 MiB)")
    limits.add_argument("--max-images", type=int, default=4, help="most images in one request (default 4)")
    limits.add_argument("--max-image-pixels", type=int, default=4096 * 4096,
                        help="largest image, width x height in pixels (default 4096x4096)")
    limits.add_argument("--allow-remote-images", action="store_true",
                        help="fetch http(s) image URLs sent by clients (off: only data: URLs are read)")
    limits.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
                        help=f"answer length when a request gives no max_tokens (default {DEFAULT_MAX_NEW_TOKENS})")
    batching = parser.add_argument_group("batching")
    batching.add_argument("--max-batch-size", type=int, default=8, help="requests generated together (default 8)")
    batching.add_argument("--max-queue", type=int, default=64,
                          help="requests waiting beyond this many are refused with 503 (default 64)")
    batching.add_argument("--batch-wait-ms", type=float, default=10,
                          help="how long the idle model waits for more requests to batch (default 10 ms)")


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--image-file", required=True, nargs="+",
                        help="image(s) to talk about: files or http(s) URLs (several go with the first question)")
    add_generation_arguments(parser, "sampling")


def add_generation_arguments(parser: argparse.ArgumentParser, purpose: str) -> None:
    group = parser.add_argument_group(purpose)
    group.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                       help=f"0 = greedy decoding (default {DEFAULT_TEMPERATURE})")
    group.add_argument("--top-p", type=float, default=DEFAULT_TOP_P, help=f"default {DEFAULT_TOP_P}")
    group.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS,
                       help=f"longest answer in tokens (default {DEFAULT_MAX_NEW_TOKENS})")


def load_engine(args: argparse.Namespace):
    """A `ChatEngine` for the folder the options name, with a log line saying what was loaded."""
    from .chat_session import ChatEngine

    model_path = Path(args.model_path) if args.model_path else quickstart_checkpoint()
    if not model_path.is_dir():
        raise SystemExit(f"--model-path {model_path}: no such folder")
    if args.model_base and not Path(args.model_base).is_dir():
        raise SystemExit(f"--model-base {args.model_base}: no such folder")
    if (args.load_8bit or args.load_4bit) and importlib.util.find_spec("bitsandbytes") is None:
        raise SystemExit("--load-8bit/--load-4bit need bitsandbytes (GPU): pip install bitsandbytes")
    try:
        return ChatEngine.from_pretrained(
            str(model_path), args.model_base, conv_mode=args.conv_mode, device=args.device,
            load_8bit=args.load_8bit, load_4bit=args.load_4bit,
        )
    except (ValueError, FileNotFoundError) as error:  # the builder names the file and what is wrong
        raise SystemExit(f"cannot load the model from {model_path}: {error}") from error
