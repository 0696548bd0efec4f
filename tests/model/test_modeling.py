import pytest
import torch
from transformers import AutoModel, AutoModelForImageTextToText

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, LlavaViTSplitModel
from llava_vitsplit.model.projectors import ViTSplitProjector
from llava_vitsplit.split import ViTSplitHeads, adapt_backbone, frozen_hidden_states

from .tiny import GRID_TOKENS, TOWER_SIZE, prompt_ids, tiny_model

PROJECTORS = [
    dict(projector_type="vitsplit", vitsplit_variant="paper"),
    dict(projector_type="vitsplit", vitsplit_variant="official"),
    dict(projector_type="mlp2x_gelu"),
    dict(projector_type="linear"),
]


@pytest.mark.parametrize("projector", PROJECTORS, ids=lambda p: "-".join(p.values()))
@pytest.mark.parametrize("family", ["dinov2", "clip", "siglip"])
def test_forward_and_generate_with_images(family, projector):
    model = tiny_model(family, **projector)
    pixels = torch.randn(2, 3, TOWER_SIZE, TOWER_SIZE)
    ids = prompt_ids([1, 1])
    logits = model(input_ids=ids, pixel_values=pixels).logits
    assert logits.shape == (2, ids.shape[1], 64) and torch.isfinite(logits).all()
    features = model.model.get_image_features(pixels).pooler_output
    assert [tuple(f.shape) for f in features] == [(GRID_TOKENS, 48)] * 2
    out = model.generate(input_ids=ids, pixel_values=pixels, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out.shape == (2, ids.shape[1] + 3)


def test_vitsplit_projector_is_the_split_module_on_the_frozen_tower():
    model = tiny_model("dinov2")
    projector = model.model.multi_modal_projector
    assert isinstance(projector, ViTSplitProjector) and isinstance(projector.heads, ViTSplitHeads)
    pixels = torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    adapter = adapt_backbone(model.model.vision_tower)
    states = frozen_hidden_states(adapter, pixels, projector.split_config.needed_hidden_states)
    fused = projector.heads(states, (4, 4))
    expected = projector.to_llm(fused.flatten(2).transpose(1, 2))[0]
    torch.testing.assert_close(model.model.get_image_features(pixels).pooler_output[0], expected)


def test_mlp_projector_reads_the_penultimate_layer_without_cls():
    model = tiny_model("clip", projector_type="mlp2x_gelu")
    pixels = torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    hidden = model.model.vision_tower(pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    expected = model.model.multi_modal_projector(hidden)[0]
    torch.testing.assert_close(model.model.get_image_features(pixels).pooler_output[0], expected)
    full = tiny_model("clip", projector_type="linear", vision_feature_select_strategy="full")
    assert full.model.get_image_features(pixels).pooler_output[0].shape == (GRID_TOKENS + 1, 48)


def test_deformable_offsets_start_at_zero():
    heads = tiny_model("dinov2").model.multi_modal_projector.heads
    for net in (heads.prior_head, heads.fusion):
        assert torch.count_nonzero(net[2].offset.weight) == 0 and torch.count_nonzero(net[2].offset.bias) == 0


def test_tower_stays_frozen_and_gradients_reach_the_projector(tmp_path):
    model = tiny_model("clip", vitsplit_variant="official").train()
    assert not model.model.vision_tower.training
    assert not any(p.requires_grad for p in model.model.vision_tower.parameters())
    ids = prompt_ids([1])
    loss = model(input_ids=ids, pixel_values=torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE), labels=ids).loss
    loss.backward()
    assert all(p.grad is not None for p in model.model.multi_modal_projector.parameters())
    model.save_pretrained(tmp_path)
    reloaded = LlavaViTSplitForConditionalGeneration.from_pretrained(tmp_path).train()
    assert not any(p.requires_grad for p in reloaded.model.vision_tower.parameters())


def test_image_tokens_and_images_must_match():
    model = tiny_model("dinov2")
    pixels = torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    with pytest.raises(ValueError, match="do not match"):
        model(input_ids=prompt_ids([2]), pixel_values=pixels)  # two images' tokens, one image
    with pytest.raises(ValueError, match="do not match"):
        model(input_ids=prompt_ids([1]), pixel_values=pixels.repeat(2, 1, 1, 1))  # one image's tokens, two images
    with pytest.raises(ValueError, match="no pixel_values"):
        model(input_ids=prompt_ids([1]))
    assert model(input_ids=prompt_ids([0])).logits.shape[1] == 6  # text only


@pytest.mark.parametrize("family", ["dinov2", "clip"])
def test_several_images_per_sample_land_on_their_placeholders_in_order(family):
    """A batch of [two images, one image]: each image's features replace its own placeholder block,
    in order (row by row, left to right), and batched generation runs on it."""
    model = tiny_model(family)
    pixels = torch.randn(3, 3, TOWER_SIZE, TOWER_SIZE)
    ids = prompt_ids([2, 2])
    ids[1, 1 + GRID_TOKENS : 1 + 2 * GRID_TOKENS] = 4  # row 1: one image, then text where row 0 has its second
    seen = {}
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.update(embeds=kwargs["inputs_embeds"]), with_kwargs=True
    )
    try:
        model(input_ids=ids, pixel_values=pixels)
    finally:
        hook.remove()
    features = model.model.get_image_features(pixels).pooler_output
    image_positions = ids == model.config.image_token_id
    torch.testing.assert_close(seen["embeds"][image_positions], torch.cat(features))
    blocks = seen["embeds"][0, 1 : 1 + 2 * GRID_TOKENS]
    torch.testing.assert_close(blocks[:GRID_TOKENS], features[0])
    torch.testing.assert_close(blocks[GRID_TOKENS:], features[1])
    torch.testing.assert_close(seen["embeds"][1, 1 : 1 + GRID_TOKENS], features[2])
    out = model.generate(input_ids=ids, pixel_values=pixels, max_new_tokens=2, min_new_tokens=2, do_sample=False)
    assert out.shape == (2, ids.shape[1] + 2)


@pytest.mark.parametrize("projector", PROJECTORS[:3], ids=lambda p: "-".join(p.values()))
def test_save_and_reload_give_identical_outputs(tmp_path, projector):
    model = tiny_model("dinov2", **projector)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, LlavaViTSplitForConditionalGeneration)
    assert isinstance(AutoModel.from_config(model.config), LlavaViTSplitModel)
    ids, pixels = prompt_ids([1]), torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    torch.testing.assert_close(reloaded(input_ids=ids, pixel_values=pixels).logits, model(input_ids=ids, pixel_values=pixels).logits, rtol=0, atol=0)


def test_loading_names_missing_and_mismatched_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    tiny_model("dinov2").save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")  # transformers' on-disk Llava layout
    del state["multi_modal_projector.to_llm.bias"]
    state["multi_modal_projector.heads.fusion.0.weight"] = torch.zeros(3, 3)
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError) as error:
        LlavaViTSplitForConditionalGeneration.from_pretrained(tmp_path)
    message = str(error.value)
    assert "missing: model.multi_modal_projector.to_llm.bias" in message
    assert "heads.fusion.0.weight: checkpoint (3, 3) vs model (32, 64, 1, 1)" in message


def test_official_projector_on_clip_l_and_vicuna_7b_has_the_released_size():
    """DESIGN 2.1: the authors' projector is about 182M parameters for CLIP-L/14-336 + a 4096-wide LLM."""
    from transformers import LlamaConfig

    from llava_vitsplit.model import LlavaViTSplitConfig
    from llava_vitsplit.split import BACKBONES

    vicuna = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32)
    sizes = {}
    for fields in (dict(vitsplit_variant="official"), dict(vitsplit_variant="paper"), dict(projector_type="mlp2x_gelu")):
        config = LlavaViTSplitConfig(vision_config=BACKBONES["clip-l-336"].hf_config(), text_config=vicuna, **fields)
        with torch.device("meta"):
            projector = LlavaViTSplitForConditionalGeneration(config).model.multi_modal_projector
        sizes[next(iter(fields.values()))] = sum(p.numel() for p in projector.parameters())
    assert sizes["official"] == 182_475_776  # CLIP block 12.60M + prior head 10.49M + fusion 159.39M
    assert sizes["mlp2x_gelu"] == 1024 * 4096 + 4096 + 4096 * 4096 + 4096  # LLaVA-1.5's 21M MLP
    assert sizes["paper"] < sizes["official"]
