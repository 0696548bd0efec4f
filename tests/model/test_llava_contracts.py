"""The contracts users rely on in transformers' Llava, on our projector variants (issue 17):
the cache argument, compiled static-cache generation, meta-device construction + ``init_weights``,
``return_dict=False``, and the forward signature."""

import inspect
import warnings

import pytest
import torch
from transformers import CompileConfig, LlavaForConditionalGeneration, LlavaModel

from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, LlavaViTSplitModel

from .tiny import TOWER_SIZE, prompt_ids, tiny_model

# (tower, projector): the paper variant has the deformable convs and DINOv2's layer scale.
VARIANTS = {
    "vitsplit-paper": ("dinov2", dict(projector_type="vitsplit", vitsplit_variant="paper")),
    "vitsplit-official": ("clip", dict(projector_type="vitsplit", vitsplit_variant="official")),
    "vitsplit-sparse-gate": (
        "dinov2",
        dict(projector_type="vitsplit", vitsplit={"selection": "sparse_gate", "num_prior_layers": 2}),
    ),
    "mlp2x_gelu": ("clip", dict(projector_type="mlp2x_gelu")),
}
MAIN_VARIANTS = ["vitsplit-paper", "vitsplit-official", "mlp2x_gelu"]


def _model(name):
    family, projector = VARIANTS[name]
    return tiny_model(family, **projector)


def _inputs(batch=2):
    return prompt_ids([1] * batch), torch.randn(batch, 3, TOWER_SIZE, TOWER_SIZE)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
def test_base_model_continues_from_a_cache_passed_as_past_key_values(variant):
    base = _model(variant).model
    ids, pixels = _inputs()
    follow_up = torch.tensor([[5, 6, 7]] * 2)
    whole = base(input_ids=torch.cat([ids, follow_up], 1), pixel_values=pixels).last_hidden_state
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers deprecates the old name
        results = {}
        for name in ("cache", "past_key_values"):
            cache = base(input_ids=ids, pixel_values=pixels, use_cache=True).cache
            assert cache.get_seq_length() == ids.shape[1]
            results[name] = base(input_ids=follow_up, **{name: cache}).last_hidden_state
    torch.testing.assert_close(results["past_key_values"], results["cache"], rtol=0, atol=0)
    torch.testing.assert_close(results["cache"], whole[:, -3:], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
def test_static_cache_generation_compiles_with_fullgraph(variant):
    """Dynamo traces the whole decoding step (a data-dependent branch would fail ``fullgraph``);
    the eager backend keeps this fast, the slow test below runs inductor."""
    _check_compiled_generation(_model(variant), backend="eager")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["vitsplit-paper", "mlp2x_gelu"])
def test_static_cache_generation_compiles_with_inductor(variant):
    _check_compiled_generation(_model(variant), backend="inductor")


def _check_compiled_generation(model, backend):
    ids, pixels = _inputs()
    settings = dict(input_ids=ids, pixel_values=pixels, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    expected = model.generate(**settings)
    compile_config = CompileConfig(fullgraph=True, backend=backend, mode="default")
    compile_config._compile_all_devices = True  # transformers compiles on GPUs only unless told
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = model.generate(**settings, cache_implementation="static", compile_config=compile_config)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # decoding did run compiled
    torch.testing.assert_close(compiled, expected, rtol=0, atol=0)


def _raw_memory(tensor):
    if tensor.is_floating_point():
        return ~torch.isfinite(tensor)
    return tensor == -12345


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_meta_construction_and_init_weights_write_every_tensor(variant):
    config = _model(variant).config
    with torch.device("meta"):
        model = LlavaViTSplitForConditionalGeneration(config)
    model.to_empty(device="cpu")
    with torch.no_grad():  # what uninitialised memory may hold
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.fill_(float("nan") if tensor.is_floating_point() else -12345)
    model.init_weights()
    named = [*model.named_parameters(), *model.named_buffers()]
    assert [name for name, tensor in named if _raw_memory(tensor).any()] == []
    ids, pixels = _inputs()
    assert torch.isfinite(model.eval()(input_ids=ids, pixel_values=pixels).logits).all()
    for name, module in model.named_modules():
        if name.endswith(("prior_head.2", "fusion.2")) and hasattr(module, "offset"):  # DCNv1: a plain conv at first
            assert torch.count_nonzero(module.offset.weight) == 0 and torch.count_nonzero(module.offset.bias) == 0
            assert module.conv.weight.abs().sum() > 0


def test_init_weights_keeps_what_was_loaded(tmp_path):
    model = _model("vitsplit-paper")
    model.save_pretrained(tmp_path)
    reloaded = LlavaViTSplitForConditionalGeneration.from_pretrained(tmp_path)
    reloaded.init_weights()  # everything was loaded, so nothing is re-drawn
    for (name, expected), actual in zip(model.state_dict().items(), reloaded.state_dict().values()):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
def test_get_image_features_returns_a_tuple_without_return_dict(variant):
    model = _model(variant)
    pixels = _inputs()[1]
    as_dict = model.get_image_features(pixels)
    for owner in (model, model.model):
        as_tuple = owner.get_image_features(pixels, return_dict=False)
        assert isinstance(as_tuple, tuple) and len(as_tuple) == 1
        for got, want in zip(as_tuple[0], as_dict.pooler_output, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_forward_keeps_the_parents_signature():
    for ours, theirs in ((LlavaViTSplitModel, LlavaModel), (LlavaViTSplitForConditionalGeneration, LlavaForConditionalGeneration)):
        assert list(inspect.signature(ours.forward).parameters) == list(inspect.signature(theirs.forward).parameters)


@pytest.mark.parametrize("variant", MAIN_VARIANTS)
def test_inputs_embeds_give_the_same_logits_as_input_ids(variant):
    model = _model(variant)
    ids, pixels = _inputs()
    embeds = model.get_input_embeddings()(ids)
    torch.testing.assert_close(
        model(inputs_embeds=embeds, pixel_values=pixels).logits, model(input_ids=ids, pixel_values=pixels).logits
    )
