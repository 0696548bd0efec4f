"""A tiny random LLaVA-ViTSplit checkpoint on disk, an engine over it, and a running demo server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.model.tiny import save_tiny_llm, save_tiny_tower

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 180
# The demo server's slider defaults: greedy (answers can be checked) and short (fast).
SLIDER_DEFAULTS = dict(temperature=0.0, top_p=0.7, max_new_tokens=24)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A full model folder (weights, config, processor) as stage 2 writes it: DINOv2 tower, ViT-Split."""
    from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration

    parts = tmp_path_factory.mktemp("parts")
    torch.manual_seed(0)  # the same random model every run: its greedy answers are fixed
    model, processor = LlavaViTSplitForConditionalGeneration.from_parts(
        save_tiny_llm(parts / "llm"), save_tiny_tower(parts / "tower", "dinov2"), projector_type="vitsplit"
    )
    folder = tmp_path_factory.mktemp("tiny-llava-vitsplit")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def engine(tiny_checkpoint):
    from llava_vitsplit.serve.chat_session import ChatEngine

    return ChatEngine.from_pretrained(str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="session")
def example_photos(tmp_path_factory):
    from llava_vitsplit.serve.example_images import write_example_photos

    return [path for path, _ in write_example_photos(tmp_path_factory.mktemp("examples"))]


@dataclass(frozen=True)
class RunningDemo:
    url: str
    log_path: Path  # the server's output, log lines included

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()

    def wait_for_log(self, matching: str, until: Callable[[list[str]], bool], start: int = 0,
                     timeout_s: float = 30) -> list[str]:
        """The log lines from line `start` on that contain `matching`, once `until` holds for them.

        A server logs a generation after its client has the answer, so a test that read the log
        right after the answer could be early: it waits for the lines instead."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [line for line in self.log_lines()[start:] if matching in line]
            if until(found):
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"the server's log lines with {matching!r} did not become complete within "
                            f"{timeout_s} s:\n" + "\n".join(self.log_lines()[start:]))
            time.sleep(0.05)


def batch_rows(log_lines: list[str]) -> int:
    """Requests answered in the scheduler's "batch of N: ..." log lines."""
    return sum(int(line.split("batch of ")[1].split(":")[0]) for line in log_lines)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_demo(model_path: Path, log_dir: Path):
    """`python -m llava_vitsplit.serve.gradio_demo` on a free local port, stopped on exit."""
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in SLIDER_DEFAULTS.items()]
    with running_server("llava_vitsplit.serve.gradio_demo", model_path, log_dir / "demo.log", flags, "/") as demo:
        yield demo


@contextlib.contextmanager
def running_api_server(model_path: Path, log_path: Path, flags: list[str]):
    """`python -m llava_vitsplit.serve.api.server` (the `serve` command) on a free local port."""
    with running_server("llava_vitsplit.serve.api.server", model_path, log_path, flags, "/health") as server:
        yield server


@contextlib.contextmanager
def running_server(module: str, model_path: Path, log_path: Path, flags: list[str], ready_path: str):
    """`python -m MODULE --model-path ... FLAGS` on 127.0.0.1 and a free port, until `ready_path` answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", module, "--model-path", str(model_path),
             "--device", "cpu", "--host", "127.0.0.1", "--port", str(port), *flags],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url + ready_path.lstrip("/"), server, log_path)
        yield RunningDemo(url, log_path)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def demo_server(tiny_checkpoint, tmp_path_factory):
    with running_demo(tiny_checkpoint, tmp_path_factory.mktemp("server")) as demo:
        yield demo


def _wait_until_serving(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the server did not answer on {url} within {SERVER_START_TIMEOUT_S} s:\n{log_path.read_text()}")
