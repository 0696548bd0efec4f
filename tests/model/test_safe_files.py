"""A truncated .safetensors file or a refused pickle is named, with what is wrong, wherever it is loaded;
the advice never is to unpickle it."""

import os
import shutil

import pytest
import torch

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration
from llava_vitsplit.model.projector_io import PROJECTOR_WEIGHTS, load_projector, save_projector
from llava_vitsplit.safe_files import WeightsFileError, check_safetensors

from .tiny import save_tiny_tower, tiny_model


def _truncate(path, keep_fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


class _WritesMarker:
    marker = None

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def saved_model(tmp_path):
    model = tiny_model("dinov2")
    model.save_pretrained(tmp_path / "model")
    return model, tmp_path / "model"


def test_a_truncated_checkpoint_is_named(saved_model):
    _, folder = saved_model
    _truncate(folder / "model.safetensors")
    with pytest.raises(WeightsFileError, match=r"model/model.safetensors is truncated or corrupt .*holds"):
        LlavaViTSplitForConditionalGeneration.from_pretrained(folder)


def test_a_checkpoint_pickle_with_code_is_refused_and_never_run(saved_model, tmp_path):
    model, folder = saved_model
    (folder / "model.safetensors").unlink()
    payload = _WritesMarker()
    _WritesMarker.marker = tmp_path / "it-ran"
    torch.save({**model.state_dict(), "payload": payload}, folder / "pytorch_model.bin")
    with pytest.raises(WeightsFileError, match=r"pytorch_model.bin was refused: .*never unpickles") as refused:
        LlavaViTSplitForConditionalGeneration.from_pretrained(folder)
    assert "weights_only=False" not in str(refused.value) and ".safetensors" in str(refused.value)
    assert not (tmp_path / "it-ran").exists()


def test_a_truncated_projector_file_is_named(tmp_path):
    model = tiny_model("dinov2", projector_type="linear")
    save_projector(model, tmp_path)
    _truncate(tmp_path / PROJECTOR_WEIGHTS, 0.9)
    with pytest.raises(WeightsFileError, match=rf"{PROJECTOR_WEIGHTS} is truncated or corrupt"):
        load_projector(model, tmp_path)


def test_a_truncated_llm_is_named_when_building_for_training(tiny_llm_dir, tmp_path):
    llm = tmp_path / "llm"
    shutil.copytree(tiny_llm_dir, llm)
    _truncate(llm / "model.safetensors")
    tower = save_tiny_tower(tmp_path / "tower", "dinov2")
    with pytest.raises(WeightsFileError, match=r"llm/model.safetensors is truncated or corrupt"):
        LlavaViTSplitForConditionalGeneration.from_parts(llm, tower, projector_type="linear")


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"\x01", "not even the header's length"),
        ((10**9).to_bytes(8, "little") + b"{}", "header announced"),
        ((4).to_bytes(8, "little") + b"{no}", "not valid JSON"),
    ],
)
def test_broken_headers_are_named(tmp_path, content, reason):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match=rf"weights.safetensors is truncated or corrupt \(.*{reason}"):
        check_safetensors(path)
