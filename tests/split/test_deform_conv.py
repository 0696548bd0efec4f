"""Our deformable convolution against torchvision's: values, gradients (offsets included), bf16."""

import pytest
import torch
from torchvision.ops import DeformConv2d as TorchvisionDeformConv2d
from torchvision.ops import deform_conv2d as torchvision_deform_conv2d

from llava_vitsplit.split import DeformConv2d, deform_conv2d
from llava_vitsplit.split.deform_conv import sampled_deform_conv2d

# (batch, in, out, height, width, kernel, stride, padding, dilation)
SHAPES = [
    (2, 5, 7, 9, 11, 3, 1, 1, 1),  # odd sizes, the prior head's settings
    (1, 3, 4, 1, 1, 3, 1, 1, 1),  # a 1x1 map: every tap but the centre is in the padding
    (2, 4, 3, 8, 6, 3, 2, 0, 1),  # stride 2, no padding
    (1, 2, 2, 7, 5, 3, 1, 2, 2),  # dilation 2, padding 2
    (1, 3, 2, 5, 4, 2, 1, 0, 1),  # an even kernel
]


def _case(shape, dtype=torch.float32, offset_scale=2.0, seed=0):
    batch, channels, out_channels, height, width, kernel, stride, padding, dilation = shape
    generator = torch.Generator().manual_seed(seed)
    out_h = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    tensors = (
        torch.randn(batch, channels, height, width, generator=generator),
        torch.randn(batch, 2 * kernel * kernel, out_h, out_w, generator=generator) * offset_scale,
        torch.randn(out_channels, channels, kernel, kernel, generator=generator),
        torch.randn(out_channels, generator=generator),
    )
    return [t.to(dtype).requires_grad_() for t in tensors], dict(stride=stride, padding=padding, dilation=dilation)


def _values_and_gradients(function, tensors, settings, seed=1):
    out = function(*tensors, **settings)
    direction = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return [out, *torch.autograd.grad(out, tensors, direction)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("offset_scale", [0.0, 0.7, 3.0], ids=["zero-offsets", "small-offsets", "large-offsets"])
def test_equals_torchvision_in_float32(shape, offset_scale):
    """Values and the gradients of input, offset, kernel and bias, to 1e-5. Zero offsets put every
    tap on a pixel (the kinks of bilinear sampling) and the border taps on the padding; large
    offsets send many taps off the image."""
    tensors, settings = _case(shape, offset_scale=offset_scale)
    ours = _values_and_gradients(sampled_deform_conv2d, tensors, settings)
    theirs = _values_and_gradients(torchvision_deform_conv2d, tensors, settings)
    for name, a, b in zip(("output", "input", "offset", "weight", "bias"), ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


def test_the_prior_heads_shape_equals_torchvision():
    """384 channels at 37x37, the shape the benchmark times."""
    tensors, settings = _case((1, 384, 8, 37, 37, 3, 1, 1, 1))
    tensors[2].data.mul_(0.02)
    for a, b in zip(
        _values_and_gradients(sampled_deform_conv2d, tensors, settings),
        _values_and_gradients(torchvision_deform_conv2d, tensors, settings),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_full_gradcheck_in_float64_on_a_tiny_map():
    tensors, settings = _case((1, 1, 1, 3, 3, 3, 1, 1, 1), dtype=torch.float64, offset_scale=1.3)
    assert torch.autograd.gradcheck(lambda *t: sampled_deform_conv2d(*t, **settings), tensors)


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[2], SHAPES[3]], ids=lambda s: "x".join(map(str, s)))
def test_gradcheck_in_float64(shape):
    _, _, _, height, width, *rest = shape
    small = (1, 2, 2, min(height, 5), min(width, 4), *rest)
    tensors, settings = _case(small, dtype=torch.float64, offset_scale=1.3)
    assert torch.autograd.gradcheck(lambda *t: sampled_deform_conv2d(*t, **settings), tensors, fast_mode=True)


def test_bf16_and_autocast_follow_float32():
    tensors, settings = _case(SHAPES[0], offset_scale=1.5)
    reference = torchvision_deform_conv2d(*tensors, **settings)
    as_bf16 = [t.detach().bfloat16().requires_grad_() for t in tensors]
    out = deform_conv2d(*as_bf16, **settings)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.15)
    out.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 and torch.isfinite(t.grad).all() for t in as_bf16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_out = deform_conv2d(*tensors, **settings)
    assert autocast_out.dtype == torch.bfloat16
    torch.testing.assert_close(autocast_out.float(), reference, rtol=0.05, atol=0.15)


def test_module_matches_torchvisions_module():
    ours, theirs = DeformConv2d(4, 6, 3, padding=1), TorchvisionDeformConv2d(4, 6, 3, padding=1)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict())
    x, offset = torch.randn(2, 4, 7, 9), torch.randn(2, 18, 7, 9)
    torch.testing.assert_close(ours(x, offset), theirs(x, offset), rtol=1e-5, atol=1e-5)
    bound = 1 / 6  # kaiming_uniform(a=sqrt(5)) over fan-in 4 * 3 * 3 = 36
    assert ours.weight.abs().max() <= bound and ours.weight.std() > bound / 4


def test_bad_shapes_name_what_is_wrong():
    x, weight = torch.randn(1, 4, 5, 5), torch.randn(3, 4, 3, 3)
    with pytest.raises(ValueError, match="2 x 9 taps"):
        deform_conv2d(x, torch.randn(1, 9, 5, 5), weight, padding=1)
    with pytest.raises(ValueError, match="does not take 4 input channels"):
        deform_conv2d(x, torch.randn(1, 18, 5, 5), torch.randn(3, 2, 3, 3), padding=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_uses_torchvisions_kernel_in_every_dtype():
    tensors, settings = _case(SHAPES[0], offset_scale=1.5)
    cuda = [t.detach().cuda() for t in tensors]
    torch.testing.assert_close(
        deform_conv2d(*cuda, **settings).cpu(), sampled_deform_conv2d(*tensors, **settings), rtol=1e-4, atol=1e-4
    )
    assert deform_conv2d(*[t.bfloat16() for t in cuda], **settings).dtype == torch.bfloat16


def test_backward_keeps_the_sampling_inputs_and_kernel_not_the_columns_or_a_kernel_copy():
    (x, offset, weight, bias), settings = _case((1, 16, 8, 9, 9, 3, 1, 1, 1))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        sampled_deform_conv2d(x, offset, weight, bias, **settings)
    columns = 9 * 9 * 9 * 16  # pixels x taps x channels
    assert saved and max(t.numel() for t in saved) < columns
    kernel_sized = [t for t in saved if t.numel() == weight.numel()]
    assert kernel_sized and all(t.data_ptr() == weight.data_ptr() for t in kernel_sized)
