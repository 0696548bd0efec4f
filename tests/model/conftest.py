import pytest
import torch

from .tiny import save_tiny_llava_hf, save_tiny_llm, save_tiny_tower


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory):
    return save_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="session")
def tiny_tied_llm_dir(tmp_path_factory):
    return save_tiny_llm(tmp_path_factory.mktemp("tiny-llm-tied"), tie_word_embeddings=True)


@pytest.fixture(scope="session")
def tiny_tower_dirs(tmp_path_factory):
    families = ("dinov2", "clip", "siglip")
    return {family: save_tiny_tower(tmp_path_factory.mktemp(f"tiny-{family}"), family) for family in families}


@pytest.fixture(scope="session")
def llava_hf_dir(tmp_path_factory):
    torch.manual_seed(0)
    return save_tiny_llava_hf(tmp_path_factory.mktemp("llava-hf"))
