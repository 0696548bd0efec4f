"""Throughput of `llava-vitsplit serve`: 16 concurrent clients against one request at a time.

The model is the quick start's embedded default (the real DINOv2-S/14 tower at 112 px and the real
SmolLM2-135M, with a fresh ViT-Split projector: throughput does not depend on what it learned),
or any checkpoint given with --model-path. The server runs in this process (uvicorn in a thread),
on 127.0.0.1; clients are the real `openai` client, each question with one photo as a data URL.

Every answer is exactly --max-tokens long (EOS is suppressed through the generation config, as
serving benchmarks do with vLLM's `ignore_eos`), so every mode does the same work. Three modes in
one run, on the same server and model:
  one at a time        a single client, request after request;
  16 clients, batch 1  16 clients at once, the server generating one request at a time;
  16 clients, batched  16 clients at once, the server batching up to --max-batch-size.
Ratios are taken within the run, so load on a shared machine hits every mode alike.

    python scripts/benchmarks/serve_throughput.py --requests 32 --max-tokens 32
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import torch
import uvicorn
from PIL import Image
from tqdm import tqdm

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration
from llava_vitsplit.quickstart.weights import fetch_demo_weights
from llava_vitsplit.serve.api.app import ServerConfig, create_app
from llava_vitsplit.serve.chat_session import ChatEngine
from llava_vitsplit.serve.example_images import write_example_photos

MODEL_NAME = "benchmark"
QUESTIONS = ["What is in this photo?", "Describe the picture.", "What colours do you see?", "What is happening?"]


def quickstart_model(folder: Path) -> Path:
    weights = fetch_demo_weights()
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        weights.smollm2_135m, weights.dinov2_small, projector_type="vitsplit", image_size=112)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def start_server(engine: ChatEngine, max_batch_size: int, clients: int) -> tuple[str, uvicorn.Server]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ServerConfig(MODEL_NAME, max_batch_size=max_batch_size, max_queue=4 * clients)
    server = uvicorn.Server(uvicorn.Config(create_app(engine, config), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1", server


def data_urls() -> list[str]:
    urls = []
    for path, _ in write_example_photos():
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").resize((224, 224)).save(buffer, format="JPEG", quality=90)
        urls.append(f"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()}")
    return urls


def run_mode(base_url: str, requests: int, clients: int, max_tokens: int, images: list[str]) -> dict:
    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=1800)

    def one(index: int) -> int:
        content = [{"type": "image_url", "image_url": {"url": images[index % len(images)]}},
                   {"type": "text", "text": QUESTIONS[index % len(QUESTIONS)]}]
        reply = client.chat.completions.create(model=MODEL_NAME, messages=[{"role": "user", "content": content}],
                                               temperature=0, max_tokens=max_tokens)
        return reply.usage.completion_tokens

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        tokens = sum(tqdm(pool.map(one, range(requests)), total=requests, desc=f"{clients} client(s)", leave=False))
    seconds = time.perf_counter() - started
    return {"requests": requests, "tokens": tokens, "seconds": round(seconds, 2),
            "requests_per_s": round(requests / seconds, 3), "tokens_per_s": round(tokens / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", help="a trained checkpoint (default: the quick start's real parts, fresh projector)")
    parser.add_argument("--requests", type=int, default=32, help="requests per mode")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32, help="length of every answer")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        model_path = args.model_path or quickstart_model(Path(scratch) / "model")
        engine = ChatEngine.from_pretrained(str(model_path), device="cpu")
    eos = engine.model.generation_config.eos_token_id
    engine.model.generation_config.suppress_tokens = list(eos) if isinstance(eos, list) else [eos]
    base_url, server = start_server(engine, args.max_batch_size, args.clients)
    scheduler = server.config.app.state.completions.scheduler
    images = data_urls()
    run_mode(base_url, 1, 1, 2, images)  # warm-up
    modes = {}
    modes["one at a time"] = run_mode(base_url, args.requests, 1, args.max_tokens, images)
    scheduler.max_batch_size = 1
    modes[f"{args.clients} clients, batch 1"] = run_mode(base_url, args.requests, args.clients, args.max_tokens, images)
    scheduler.max_batch_size = args.max_batch_size
    modes[f"{args.clients} clients, batched"] = run_mode(base_url, args.requests, args.clients, args.max_tokens, images)
    server.should_exit = True
    baseline = modes["one at a time"]["tokens_per_s"]
    print(f"{args.requests} requests x {args.max_tokens} tokens per mode, {torch.get_num_threads()} threads, "
          f"max batch {args.max_batch_size}")
    print(f"{'mode':<26}{'seconds':>9}{'req/s':>8}{'tok/s':>8}{'vs one':>8}")
    for name, row in modes.items():
        row["vs_one_at_a_time"] = round(row["tokens_per_s"] / baseline, 2)
        print(f"{name:<26}{row['seconds']:>9.1f}{row['requests_per_s']:>8.2f}{row['tokens_per_s']:>8.1f}"
              f"{row['vs_one_at_a_time']:>8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(modes, indent=1))


if __name__ == "__main__":
    main()
