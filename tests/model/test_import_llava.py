"""Original LLaVA-1.5 checkpoints (haotian-liu layout) import with every tensor in its place."""

import json

import pytest
import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration

from llava_vitsplit.model.import_llava import import_llava

from .tiny import TEXT_CONFIG, LlamaConfig, random_image, save_tiny_llava_checkpoint


def _reference(state, tower_config, vocab_size, image_token_id):
    """transformers' own Llava holding the same LLaVA tensors (one extra vocabulary row for <image>)."""
    config = LlavaConfig(
        vision_config=tower_config,
        text_config=LlamaConfig(**{**TEXT_CONFIG, "vocab_size": vocab_size + 1}),
        image_token_id=image_token_id,
    )
    model = LlavaForConditionalGeneration(config).eval()
    mapped = {}
    for key, value in state.items():
        if key.startswith("model.mm_projector."):
            key = key.replace("model.mm_projector.0", "model.multi_modal_projector.linear_1")
            key = key.replace("model.mm_projector.2", "model.multi_modal_projector.linear_2")
        elif key.startswith("model.vision_tower.vision_tower.vision_model."):
            key = "model.vision_tower." + key.removeprefix("model.vision_tower.vision_tower.vision_model.")
        elif key.startswith("model."):
            key = "model.language_model." + key.removeprefix("model.")
        mapped[key] = value
    with torch.no_grad():
        for name in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
            grown = model.state_dict()[name].clone()
            grown[:vocab_size] = mapped[name]
            mapped[name] = grown
    model.load_state_dict(mapped, strict=True)
    return model


@pytest.mark.parametrize("shards", [False, True], ids=["pytorch_model.bin", "safetensors-shards"])
def test_logits_match_transformers_llava_on_the_same_tensors(tmp_path, tiny_tower_dirs, shards):
    state = save_tiny_llava_checkpoint(tmp_path / "llava", tiny_tower_dirs["clip"], safetensors_shards=shards)
    model, processor = import_llava(tmp_path / "llava", vision_tower=tiny_tower_dirs["clip"], dtype=torch.float32)
    assert (model.config.projector_type, processor.image_aspect_ratio) == ("mlp2x_gelu", "pad")
    vocab = state["lm_head.weight"].shape[0]
    assert model.config.image_token_id == vocab and len(processor.tokenizer) == vocab + 1
    reference = _reference(state, model.config.vision_config, vocab, model.config.image_token_id)
    inputs = processor(text=["USER: <image>\nWhat is in the image? ASSISTANT:"], images=[random_image()], return_tensors="pt")
    with torch.no_grad():
        ours, theirs = model(**inputs).logits, reference(**inputs).logits
    torch.testing.assert_close(ours[..., :vocab], theirs[..., :vocab], rtol=1e-5, atol=1e-5)


def test_tower_weights_come_from_the_tower_folder_when_absent(tmp_path, tiny_tower_dirs):
    tower = tiny_tower_dirs["clip"]
    save_tiny_llava_checkpoint(tmp_path / "llava", tower, include_tower=False, mm_vision_tower=str(tower))
    model, _ = import_llava(tmp_path / "llava")  # the recorded tower is a local folder here
    assert model.dtype == torch.float32
    from transformers import CLIPVisionModel

    expected = CLIPVisionModel.from_pretrained(tower).state_dict()
    for key, value in model.model.vision_tower.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_problems_are_named(tmp_path, tiny_tower_dirs):
    tower = tiny_tower_dirs["clip"]
    folder = tmp_path / "llava"
    state = save_tiny_llava_checkpoint(folder, tower)
    with pytest.raises(FileNotFoundError, match="openai/clip-vit-large-patch14-336.* is not a local model folder"):
        import_llava(folder)
    del state["model.layers.1.mlp.up_proj.weight"]
    state["model.mm_projector.2.bias"] = torch.zeros(7)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ValueError) as error:
        import_llava(folder, vision_tower=tower)
    assert "missing 1 tensor(s): model.language_model.layers.1.mlp.up_proj.weight" in str(error.value)
    assert "model.multi_modal_projector.linear_2.bias: checkpoint (7,) vs model (48,)" in str(error.value)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "mm_use_im_start_end": True}))
    with pytest.raises(ValueError, match="image start/end"):
        import_llava(folder, vision_tower=tower)


def test_authors_vitsplit_run_config_maps_to_the_official_variant(tmp_path, tiny_tower_dirs):
    from transformers import AutoConfig

    from llava_vitsplit.model.import_llava import llava_projector_fields

    vision = AutoConfig.from_pretrained(tiny_tower_dirs["clip"])
    fields = llava_projector_fields(
        {"mm_projector_type": "vitsplit", "mm_tuned_layers_num": 1, "mm_frozen_select_layer": [-2]}, vision, 48
    )
    assert (fields["projector_type"], fields["vitsplit_variant"]) == ("vitsplit", "official")
    assert fields["vitsplit"]["prior_layer_ids"] == [2] and fields["vitsplit"]["split_point"] == 3
    with pytest.raises(ValueError, match="mm_projector_type='mlp3x_gelu' is not supported"):
        llava_projector_fields({"mm_projector_type": "mlp3x_gelu"}, vision, 48)
