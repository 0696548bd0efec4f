import json
import os

import pytest
import torch

from llava_vitsplit.model.projector_io import PROJECTOR_CONFIG, load_projector, save_projector

from .tiny import tiny_model


def _perturbed(model):
    with torch.no_grad():
        for parameter in model.model.multi_modal_projector.parameters():
            parameter.add_(torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("fields", [dict(vitsplit_variant="paper"), dict(projector_type="mlp2x_gelu")])
def test_round_trip(tmp_path, fields):
    source = _perturbed(tiny_model("dinov2", **fields))
    save_projector(source, tmp_path)
    assert json.loads((tmp_path / PROJECTOR_CONFIG).read_text())["projector_type"] == source.config.projector_type
    target = tiny_model("dinov2", **fields)
    load_projector(target, tmp_path)
    for (key, a), b in zip(source.model.multi_modal_projector.state_dict().items(), target.model.multi_modal_projector.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=key)


def test_llava_mm_projector_bin_loads(tmp_path):
    """LLaVA's stage-1 file: `model.mm_projector.0/2.*`, pickled."""
    reference = _perturbed(tiny_model("clip", projector_type="mlp2x_gelu")).model.multi_modal_projector
    llava = {
        "model.mm_projector.0.weight": reference.linear_1.weight.detach().half(),
        "model.mm_projector.0.bias": reference.linear_1.bias.detach().half(),
        "model.mm_projector.2.weight": reference.linear_2.weight.detach().half(),
        "model.mm_projector.2.bias": reference.linear_2.bias.detach().half(),
    }
    torch.save(llava, tmp_path / "mm_projector.bin")
    model = tiny_model("clip", projector_type="mlp2x_gelu")
    load_projector(model, tmp_path / "mm_projector.bin")
    torch.testing.assert_close(model.model.multi_modal_projector.linear_2.bias, llava["model.mm_projector.2.bias"].float())


def test_vitsplit_authors_release_layout_loads(tmp_path):
    """The authors' projector: `tuned_head.N.*` (CLIP block), `frozen_conv.0/2`, `fusion_conv.0/2`."""
    source = _perturbed(tiny_model("clip", vitsplit_variant="official")).model.multi_modal_projector
    renames = {"heads.task_head.": "tuned_head.", "heads.prior_head.": "frozen_conv.", "heads.fusion.": "fusion_conv."}
    authors = {}
    for key, value in source.state_dict().items():
        for ours, theirs in renames.items():
            key = key.replace(ours, theirs)
        authors["model.mm_projector." + key] = value
    assert "model.mm_projector.tuned_head.0.self_attn.q_proj.weight" in authors
    torch.save(authors, tmp_path / "mm_projector.bin")
    model = tiny_model("clip", vitsplit_variant="official")
    load_projector(model, tmp_path)
    torch.testing.assert_close(model.model.multi_modal_projector.heads.fusion[2].weight, source.heads.fusion[2].weight)


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path):
    state = {f"model.mm_projector.{k}": v for k, v in tiny_model("clip", projector_type="mlp2x_gelu").model.multi_modal_projector.state_dict().items()}
    state = {k.replace("linear_1", "0").replace("linear_2", "2"): v for k, v in state.items()}
    state["model.mm_projector.2.weight"] = torch.zeros(48, 40)
    del state["model.mm_projector.0.bias"]
    torch.save(state, tmp_path / "mm_projector.bin")
    with pytest.raises(ValueError) as error:
        load_projector(tiny_model("clip", projector_type="mlp2x_gelu"), tmp_path / "mm_projector.bin")
    assert "linear_2.weight: checkpoint (48, 40) vs model (48, 48)" in str(error.value)
    assert "missing 1 tensor(s): linear_1.bias" in str(error.value)


def test_projector_type_recorded_beside_the_file_must_match(tmp_path):
    save_projector(tiny_model("dinov2", projector_type="linear"), tmp_path)
    with pytest.raises(ValueError, match="holds a 'linear' projector but the model's projector_type is 'mlp2x_gelu'"):
        load_projector(tiny_model("dinov2", projector_type="mlp2x_gelu"), tmp_path)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_a_pickle_with_code_is_refused(tmp_path):
    torch.save({"model.mm_projector.weight": torch.zeros(1), "payload": _Payload()}, tmp_path / "mm_projector.bin")
    with pytest.raises(ValueError, match=r"mm_projector.bin was refused: .*never unpickles") as refused:
        load_projector(tiny_model("dinov2", projector_type="linear"), tmp_path / "mm_projector.bin")
    assert "weights_only=False" not in str(refused.value)
