"""The heads' recomputed 4x-resolution tail equals the plain modules: values, gradients, running stats."""

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from llava_vitsplit.dense.heads import DepthHead, SegmentationHead
from llava_vitsplit.dense.recompute import group_norm_gelu_batch_norm_conv


def _plain_head(head: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """The heads' forward as autograd would record it, module by module (the old code path)."""
    conv = head.classifier if isinstance(head, SegmentationHead) else head.predict
    out = conv(head.norm(head.upsample(features)))
    return out if isinstance(head, SegmentationHead) else F.relu(out) + head.min_depth


def _randomise(module: nn.Module) -> nn.Module:
    """Non-trivial affine parameters and running statistics, so that a mixed-up slice shows."""
    for norm in (m for m in module.modules() if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))):
        nn.init.normal_(norm.weight)
        nn.init.normal_(norm.bias)
        if isinstance(norm, nn.BatchNorm2d):
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 2.0)
    return module


def _compare(build, train: bool, dtype=torch.float32, atol=1e-5):
    torch.manual_seed(0)  # fixed draws: the depth head's ReLU would turn a rounding difference at 0 into a gradient one
    reference = _randomise(build()).to(dtype).train(train)
    head = copy.deepcopy(reference)
    features = torch.randn(2, 64, 3, 5, dtype=dtype, requires_grad=True)
    lean_features = features.detach().clone().requires_grad_()
    expected, actual = _plain_head(reference, features), head(lean_features)
    torch.testing.assert_close(actual, expected, atol=atol, rtol=1e-4)
    grad = torch.randn_like(expected)
    expected.backward(grad)
    actual.backward(grad)
    torch.testing.assert_close(lean_features.grad, features.grad, atol=atol, rtol=1e-4)
    for (name, param), ref in zip(head.named_parameters(), reference.parameters()):
        torch.testing.assert_close(param.grad, ref.grad, atol=atol, rtol=1e-4, msg=name)
    for (name, buffer), ref in zip(head.named_buffers(), reference.buffers()):
        torch.testing.assert_close(buffer, ref, msg=name)  # running statistics updated once, as BatchNorm does


@pytest.mark.parametrize("build", [lambda: SegmentationHead(64, 5), lambda: DepthHead(64)], ids=["seg", "depth"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_recomputed_head_equals_the_plain_modules(build, train):
    _compare(build, train)


def test_recomputed_head_equals_the_plain_modules_in_float64():
    _compare(lambda: SegmentationHead(64, 5), True, torch.float64, atol=1e-12)


def test_recomputed_head_under_bf16_autocast_is_close_to_the_plain_modules():
    reference = _randomise(SegmentationHead(64, 5))
    head = copy.deepcopy(reference)
    features = torch.randn(2, 64, 3, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, actual = _plain_head(reference, features), head(features)
    assert actual.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(actual.float(), expected.float(), atol=0.1, rtol=0.05)
    actual.float().square().mean().backward()
    expected.float().square().mean().backward()
    for param, ref in zip(head.parameters(), reference.parameters()):
        assert param.grad.dtype == torch.float32
        torch.testing.assert_close(param.grad, ref.grad, atol=0.05, rtol=0.1)


def test_recomputed_tail_passes_gradcheck_with_batch_statistics():
    group_norm, batch_norm, conv = _randomise(nn.ModuleList([nn.GroupNorm(32, 32), nn.BatchNorm2d(32), nn.Conv2d(32, 2, 3, padding=1)])).double()
    x = torch.randn(2, 32, 2, 3, dtype=torch.float64, requires_grad=True)
    tail = lambda x: group_norm_gelu_batch_norm_conv(x, group_norm, batch_norm, conv)  # noqa: E731
    assert torch.autograd.gradcheck(tail, (x,), fast_mode=True)


def test_recomputed_tail_keeps_only_its_input_for_backward():
    group_norm, batch_norm, conv = nn.GroupNorm(32, 64), nn.BatchNorm2d(64), nn.Conv2d(64, 5, 1)
    x = torch.randn(1, 64, 16, 16, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        group_norm_gelu_batch_norm_conv(x, group_norm, batch_norm, conv)
    full_size = [t for t in saved if t.numel() >= x.numel()]
    assert len(full_size) == 1 and full_size[0].data_ptr() == x.data_ptr()


def test_recomputed_tail_without_grad_is_the_modules_own_forward():
    group_norm, batch_norm, conv = nn.GroupNorm(32, 64), nn.BatchNorm2d(64), nn.Conv2d(64, 5, 1)
    x = torch.randn(1, 64, 4, 4)
    with torch.no_grad():
        out = group_norm_gelu_batch_norm_conv(x, group_norm, batch_norm, conv)
        assert torch.equal(out, conv(batch_norm(F.gelu(group_norm(x)))))


def test_sync_batch_norm_keeps_the_plain_modules():
    """``dense train`` converts BatchNorm to SyncBatchNorm on several GPUs: its cross-process statistics
    are not what the slices compute, so the modules run as they are."""
    group_norm, conv = nn.GroupNorm(32, 64), nn.Conv2d(64, 5, 1)
    batch_norm = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(64)))[0].eval()
    x = torch.randn(1, 64, 8, 8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = group_norm_gelu_batch_norm_conv(x, group_norm, batch_norm, conv)
    assert len([t for t in saved if t.numel() >= x.numel()]) > 1
    torch.testing.assert_close(out, conv(batch_norm(F.gelu(group_norm(x)))))
