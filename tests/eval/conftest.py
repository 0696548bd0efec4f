import pytest
import torch

from .tiny_checkpoint import build_model, save_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A random tiny LlavaViTSplit checkpoint folder (model + processor), as save_pretrained writes it."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-llava-vitsplit")
    model, processor = build_model(root / "parts")
    return save_checkpoint(model, processor, root / "checkpoint")
