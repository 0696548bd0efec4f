"""DCNv1's deformable convolution, written as bilinear sampling plus one matrix product.

Why our own: on the CPU, torchvision's ``deform_conv2d`` costs about 6x a plain 3x3 conv of the same
shape (forward + backward, 384 channels, 37x37, batch 2), which made ViT-Split's step slower than
full fine-tuning. Here each output pixel's K = kh * kw taps are bilinear mixes of four input
pixels, all channels alike, so sampling is one ``embedding_bag`` (a weighted sum of four rows of the
channels-last input, with a fused backward for both the input and the weights), and the
convolution is one matrix product over ``K * C``: the same multiply-adds as a plain conv. It equals
torchvision's to float tolerance, gradients (offsets included) too, and runs in bfloat16, which
torchvision's kernels do not. On CUDA torchvision's kernel is kept: it is not slower there and is the
reference (this project had no GPU to measure ours on).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d as torchvision_deform_conv2d

TORCHVISION_DEVICES = frozenset({"cuda"})
"""Device types on which torchvision's kernel runs instead of ours."""


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """torchvision's ``deform_conv2d`` (DCNv1: one offset group, no mask, no weight groups) on any
    device and dtype: ours off CUDA, torchvision's on CUDA (in float32 for what it lacks, bf16).

    Under autocast the result has the autocast dtype, as a convolution's would.
    """
    _check_shapes(x, offset, weight)
    dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
    with torch.autocast(x.device.type, enabled=False):
        if x.device.type not in TORCHVISION_DEVICES:
            return sampled_deform_conv2d(x.to(dtype), offset, weight.to(dtype), _cast(bias, dtype), stride, padding, dilation)
        kernel_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
        out = torchvision_deform_conv2d(
            x.to(kernel_dtype),
            offset.to(kernel_dtype),
            weight.to(kernel_dtype),
            _cast(bias, kernel_dtype),
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
        return out.to(dtype)


def sampled_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """The bilinear-sampling formulation on its own (any device); ``x`` and ``weight`` share a dtype.

    Sampling follows torchvision's: each tap mixes its four neighbouring pixels, and a neighbour
    outside the image counts as zero (in the value and in the offset's gradient).
    """
    _check_shapes(x, offset, weight)
    batch, channels, height, width = x.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    out_h, out_w = offset.shape[-2:]
    rows, weights = _bilinear_taps(offset, (height, width), (kernel_h, kernel_w), stride, padding, dilation)
    table = x.permute(0, 2, 3, 1).reshape(-1, channels)  # channels last: one row per pixel
    out = _SampledLinear.apply(rows, table, weights.to(x.dtype), weight, bias)
    return out.view(batch, out_h, out_w, out_channels).permute(0, 3, 1, 2).contiguous()


def _sample(rows: torch.Tensor, table: torch.Tensor, weights: torch.Tensor, taps: int) -> torch.Tensor:
    """The sampled columns ``(pixels, taps * channels)``: each tap a weighted sum of four table rows."""
    columns = F.embedding_bag(rows, table, per_sample_weights=weights, mode="sum")
    return columns.view(-1, taps * table.shape[1])


def _as_columns(weight: torch.Tensor) -> torch.Tensor:
    """``(out, in, kh, kw)`` -> ``(out, kh * kw * in)``: tap-major, channel-minor, as the columns are."""
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


class _SampledLinear(torch.autograd.Function):
    """``linear(sample(...), kernel, bias)`` that keeps for backward the small sampling inputs and the
    kernel itself, not the sampled columns (taps times the input's size: 17 MiB per deformable conv
    of ViT-Split-S at 512 px) nor the kernel's reordered copy; the backward samples and reorders
    again, which costs one ``embedding_bag`` (a few percent of the conv's forward + backward)."""

    @staticmethod
    def forward(ctx, rows, table, weights, kernel, bias):
        ctx.save_for_backward(rows, table, weights, kernel)
        ctx.has_bias = bias is not None
        taps = kernel.shape[2] * kernel.shape[3]
        return F.linear(_sample(rows, table, weights, taps), _as_columns(kernel), bias)

    @staticmethod
    def backward(ctx, grad_out):
        rows, table, weights, kernel = ctx.saved_tensors
        _, needs_table, needs_weights, needs_kernel, needs_bias = ctx.needs_input_grad
        with torch.enable_grad():
            table = table.detach().requires_grad_(needs_table)
            weights = weights.detach().requires_grad_(needs_weights)
            columns = _sample(rows, table, weights, kernel.shape[2] * kernel.shape[3])
        grad_kernel = None
        if needs_kernel:
            out_channels, channels, kernel_h, kernel_w = kernel.shape
            grad_kernel = grad_out.t().mm(columns.detach()).view(out_channels, kernel_h, kernel_w, channels)
            grad_kernel = grad_kernel.permute(0, 3, 1, 2)
        grad_bias = grad_out.sum(0) if ctx.has_bias and needs_bias else None
        inputs = [t for t in (table, weights) if t.requires_grad]
        grads = iter(torch.autograd.grad(columns, inputs, grad_out.mm(_as_columns(kernel))) if inputs else ())
        grad_table = next(grads) if needs_table else None
        grad_weights = next(grads) if needs_weights else None
        return None, grad_table, grad_weights, grad_kernel, grad_bias


def _bilinear_taps(offset, size, kernel, stride, padding, dilation) -> tuple[torch.Tensor, torch.Tensor]:
    """For every (image, output pixel, tap): the rows of the four neighbouring pixels in the
    channels-last table, ``(N, 4)``, and their bilinear weights, ``(N, 4)``, differentiable in
    ``offset`` (zero for a neighbour outside the image)."""
    (height, width), (kernel_h, kernel_w) = size, kernel
    (stride_h, stride_w), (pad_h, pad_w), (dil_h, dil_w) = _pair(stride), _pair(padding), _pair(dilation)
    batch, _, out_h, out_w = offset.shape
    taps = kernel_h * kernel_w
    # Positions in at least float32: bf16 cannot hold a pixel coordinate's fraction.
    dtype = torch.promote_types(offset.dtype, torch.float32)
    arange = dict(device=offset.device, dtype=dtype)
    tap_y = (torch.arange(kernel_h, **arange) * dil_h).repeat_interleave(kernel_w)
    tap_x = (torch.arange(kernel_w, **arange) * dil_w).repeat(kernel_h)
    grid_y = torch.arange(out_h, **arange)[:, None, None] * stride_h - pad_h + tap_y  # (out_h, 1, taps)
    grid_x = torch.arange(out_w, **arange)[None, :, None] * stride_w - pad_w + tap_x  # (1, out_w, taps)
    shifts = offset.to(dtype).reshape(batch, taps, 2, out_h, out_w).permute(0, 3, 4, 1, 2)  # (B, h, w, taps, yx)
    y, x = shifts[..., 0] + grid_y, shifts[..., 1] + grid_x
    y_low, x_low = y.detach().floor(), x.detach().floor()
    frac_y, frac_x = y - y_low, x - x_low
    image = torch.arange(batch, device=offset.device).view(batch, 1, 1, 1) * (height * width)
    rows, weights = [], []
    for step_y, step_x, weight in (
        (0, 0, (1 - frac_y) * (1 - frac_x)),
        (0, 1, (1 - frac_y) * frac_x),
        (1, 0, frac_y * (1 - frac_x)),
        (1, 1, frac_y * frac_x),
    ):
        corner_y, corner_x = y_low + step_y, x_low + step_x
        inside = (corner_y >= 0) & (corner_y < height) & (corner_x >= 0) & (corner_x < width)
        rows.append(image + corner_y.clamp(0, height - 1).long() * width + corner_x.clamp(0, width - 1).long())
        weights.append(weight * inside)  # a corner outside the image reads zero
    return torch.stack(rows, dim=-1).view(-1, 4), torch.stack(weights, dim=-1).view(-1, 4)


def _check_shapes(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor) -> None:
    if x.dim() != 4 or offset.dim() != 4 or weight.dim() != 4:
        raise ValueError(
            f"deform_conv2d expects 4-d input, offset and weight, got {tuple(x.shape)}, {tuple(offset.shape)}, "
            f"{tuple(weight.shape)}"
        )
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"deform_conv2d: weight {tuple(weight.shape)} does not take {x.shape[1]} input channels")
    taps = weight.shape[2] * weight.shape[3]
    if offset.shape[1] != 2 * taps or offset.shape[0] != x.shape[0]:
        raise ValueError(
            f"deform_conv2d: offset {tuple(offset.shape)} must be (batch {x.shape[0]}, 2 x {taps} taps, out_h, out_w) "
            "(one offset group)"
        )


def _cast(tensor: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if tensor is None else tensor.to(dtype)


class DeformConv2d(nn.Module):
    """torchvision's ``DeformConv2d`` (same parameters, same initialisation) over ``deform_conv2d``
    above; ``forward(x, offset)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *_pair(kernel_size)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform kernel and uniform bias, as ``nn.Conv2d`` and torchvision's module."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation)
