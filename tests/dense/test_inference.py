import pytest
import torch

from llava_vitsplit.dense.inference import InferenceConfig, predict, slide_windows


def pointwise(pixel_values):
    # A per-pixel function: any tiling, flip or padding of it must give the same answer.
    return {
        "seg": torch.stack([pixel_values[:, 0], -pixel_values[:, 0]], dim=1),
        "depth": pixel_values[:, 1:2].exp(),
    }


@pytest.mark.parametrize("size", [(37, 45), (10, 12), (64, 64)])
def test_windows_cover_every_pixel_and_stay_inside(size):
    covered = torch.zeros(size)
    windows = list(slide_windows(size, (16, 16), (10, 10)))
    for top, bottom, left, right in windows:
        assert 0 <= top < bottom <= size[0] and 0 <= left < right <= size[1]
        covered[top:bottom, left:right] += 1
    assert covered.min() >= 1
    rows = max(size[0] - 16 + 9, 0) // 10 + 1
    cols = max(size[1] - 16 + 9, 0) // 10 + 1
    assert len(windows) == rows * cols


@pytest.mark.parametrize(
    "config",
    [
        InferenceConfig(),
        InferenceConfig(mode="slide", crop_size=16, stride=10),
        InferenceConfig(flip=True),
        InferenceConfig(mode="slide", crop_size=(16, 20), stride=(8, 12), flip=True),
    ],
)
def test_tiling_and_flipping_a_pointwise_model_changes_nothing(config):
    image = torch.randn(1, 3, 37, 45)
    expected = predict(pointwise, image, InferenceConfig(), {"seg": "softmax", "depth": "identity"})
    got = predict(pointwise, image, config, {"seg": "softmax", "depth": "identity"})
    for task in ("seg", "depth"):
        assert got[task].shape[-2:] == (37, 45)
        torch.testing.assert_close(got[task], expected[task])


def test_softmax_outputs_are_probabilities_and_identity_outputs_are_not_touched():
    image = torch.randn(1, 3, 8, 8)
    out = predict(pointwise, image, InferenceConfig(), {"seg": "softmax", "depth": "identity"})
    torch.testing.assert_close(out["seg"].sum(1), torch.ones(1, 8, 8))
    torch.testing.assert_close(out["depth"], image[:, 1:2].exp())


def test_test_scale_and_multi_scale_run_at_the_scaled_sizes_and_return_the_input_size():
    seen = []

    def forward(pixel_values):
        seen.append(tuple(pixel_values.shape[-2:]))
        return {"depth": torch.ones_like(pixel_values[:, :1])}

    config = InferenceConfig(test_scale=(100, 20), scales=(0.5, 1.0), flip=True)
    out = predict(forward, torch.zeros(1, 3, 40, 60), config, {"depth": "identity"})
    assert seen == [
        (10, 15),
        (10, 15),
        (20, 30),
        (20, 30),
    ]  # short side 40 -> 20, then x0.5 / x1, each flipped
    assert out["depth"].shape == (1, 1, 40, 60)
    torch.testing.assert_close(out["depth"], torch.ones(1, 1, 40, 60))


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(mode="tiles"), "mode"),
        (dict(mode="slide"), "crop_size and stride"),
        (dict(mode="slide", crop_size=8, stride=16), "exceeds"),
        (dict(scales=(0,)), "scales"),
        (dict(crop_size=(1, 2, 3)), "crop_size"),
    ],
)
def test_bad_inference_settings_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        InferenceConfig(**fields)


def test_an_unknown_activation_or_missing_output_is_an_error():
    with pytest.raises(ValueError, match="activation"):
        predict(pointwise, torch.zeros(1, 3, 4, 4), InferenceConfig(), {"seg": "sigmoid"})
    with pytest.raises(KeyError, match="normals"):
        predict(pointwise, torch.zeros(1, 3, 4, 4), InferenceConfig(), {"normals": "identity"})
