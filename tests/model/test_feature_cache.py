"""`--vision_feature_cache`: same loss as the tower, and never a stale entry."""

import pytest
import torch
from safetensors.torch import load_file, save_file

from llava_vitsplit.model.feature_cache import VisionFeatureCache

from .tiny import TOWER_SIZE, prompt_ids, tiny_model

PROJECTORS = [
    dict(projector_type="vitsplit", vitsplit_variant="paper"),
    dict(projector_type="vitsplit", vitsplit_variant="official"),
    dict(projector_type="mlp2x_gelu"),
]


def loss_and_grads(model, pixels):
    model.zero_grad(set_to_none=True)
    ids = prompt_ids([1] * len(pixels))
    loss = model(input_ids=ids, pixel_values=pixels, labels=ids).loss
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def attach(model, root):
    model.model.vision_feature_cache = VisionFeatureCache(root, model.model.vision_tower)
    return model.model.vision_feature_cache


def entries(root):
    return sorted(path.name for path in root.rglob("*.safetensors"))


@pytest.mark.parametrize("projector", PROJECTORS, ids=lambda p: "-".join(p.values()))
def test_cached_features_give_the_same_loss_and_gradients(projector, tmp_path):
    model = tiny_model(**projector).train()
    pixels = torch.randn(3, 3, TOWER_SIZE, TOWER_SIZE)
    expected_loss, expected_grads = loss_and_grads(model, pixels)
    cache = attach(model, tmp_path)
    for _round in range(2):  # cold (computes and writes), then warm (reads)
        loss, grads = loss_and_grads(model, pixels)
        torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-5)
        assert grads.keys() == expected_grads.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], expected_grads[name], atol=1e-6, rtol=1e-5)
    assert (cache.misses, cache.hits) == (3, 3)
    assert len(entries(tmp_path)) == 3


def test_a_warm_cache_does_not_run_the_tower(tmp_path):
    model = tiny_model()
    pixels = torch.randn(2, 3, TOWER_SIZE, TOWER_SIZE)
    attach(model, tmp_path)
    model.model.get_image_features(pixels)
    calls = []
    model.model.vision_tower.register_forward_pre_hook(lambda *_: calls.append(1))
    for block in model.model.vision_adapter.blocks:
        block.register_forward_pre_hook(lambda *_: calls.append(1))
    model.model.get_image_features(pixels)
    assert calls == []


def test_only_the_missing_images_of_a_batch_are_computed(tmp_path):
    model = tiny_model()
    seen, fresh = torch.randn(2, 3, TOWER_SIZE, TOWER_SIZE), torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    expected = model.model.get_image_features(torch.cat([fresh, seen])).pooler_output
    cache = attach(model, tmp_path)
    model.model.get_image_features(seen)
    features = model.model.get_image_features(torch.cat([fresh, seen])).pooler_output
    assert (cache.misses, cache.hits) == (3, 2)
    for got, want in zip(features, expected):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_a_changed_image_or_image_size_is_a_new_entry(tmp_path):
    model = tiny_model()
    cache = attach(model, tmp_path)
    pixels = torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    model.model.get_image_features(pixels)
    nudged = pixels.clone()
    nudged[0, 0, 0, 0] += 1e-3  # one value of one pixel: another processed image
    model.model.get_image_features(nudged)
    model.model.get_image_features(torch.nn.functional.interpolate(pixels, size=2 * TOWER_SIZE))  # --image_size
    assert (cache.misses, cache.hits) == (3, 0)
    assert len(entries(tmp_path)) == 3


def test_changed_tower_weights_never_read_the_old_entries(tmp_path):
    model = tiny_model()
    pixels = torch.randn(2, 3, TOWER_SIZE, TOWER_SIZE)
    attach(model, tmp_path)
    model.model.get_image_features(pixels)
    with torch.no_grad():
        model.model.vision_tower.embeddings.patch_embeddings.projection.weight.mul_(1.5)
    expected = [f.clone() for f in tiny_model_features_without_cache(model, pixels)]
    cache = attach(model, tmp_path)  # a run over the changed tower
    features = model.model.get_image_features(pixels).pooler_output
    assert (cache.misses, cache.hits) == (2, 0)
    for got, want in zip(features, expected):
        torch.testing.assert_close(got, want)
    assert len([folder for folder in tmp_path.iterdir() if folder.is_dir()]) == 2


def tiny_model_features_without_cache(model, pixels):
    saved, model.model.vision_feature_cache = model.model.vision_feature_cache, None
    try:
        return model.model.get_image_features(pixels).pooler_output
    finally:
        model.model.vision_feature_cache = saved


def test_selected_layers_and_autocast_are_part_of_the_key(tmp_path):
    model = tiny_model(projector_type="mlp2x_gelu")
    cache = attach(model, tmp_path)
    pixels = torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    model.model.get_image_features(pixels)
    model.model.get_image_features(pixels, vision_feature_layer=-1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.model.get_image_features(pixels)
    assert (cache.misses, cache.hits) == (3, 0)
    assert len([folder for folder in tmp_path.iterdir() if folder.is_dir()]) == 3


def test_an_entry_moved_under_another_key_or_damaged_is_an_error(tmp_path):
    model = tiny_model(projector_type="mlp2x_gelu")
    attach(model, tmp_path)
    pixels = torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE)
    model.model.get_image_features(pixels)
    (entry,) = tmp_path.rglob("*.safetensors")
    save_file(load_file(entry), entry, metadata={"key": "another-tower-or-layers"})
    with pytest.raises(ValueError, match="written under another key"):
        model.model.get_image_features(pixels)
    entry.write_bytes(entry.read_bytes()[:40])  # cut short
    with pytest.raises(ValueError, match=f"unreadable entry {entry}"):
        model.model.get_image_features(pixels)


def test_the_cache_root_must_be_a_folder(tmp_path):
    model = tiny_model()
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="--vision_feature_cache"):
        attach(model, tmp_path / "file")
