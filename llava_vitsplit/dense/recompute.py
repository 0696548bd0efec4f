"""GroupNorm -> GELU -> BatchNorm -> conv at the heads' 4x resolution, without keeping its intermediates.

Why our own: autograd keeps four full-size tensors for this chain (the GroupNorm's input, the GELU's
input, the BatchNorm's input and the conv's input); at 512x512 they are the largest activations of a
ViT-Split training step (4 x 30 MiB for ViT-S, 4 x 61 MiB for ViT-B, batch 1). Here the forward
keeps only the GroupNorm's input and works one slice of channels at a time, and the backward
recomputes the three element-wise layers slice by slice, so at most one slice of them is ever held.
GroupNorm (whole groups per slice), GELU and BatchNorm act per channel and the conv sums over input
channels, so the slices give the same numbers as the whole, to float rounding of that sum. The conv
is not recomputed: its gradients come from ``convolution_backward`` on the recomputed slice. The
extra cost is one more pass of the three element-wise layers in the backward.
``torch.utils.checkpoint`` cannot do this: it would keep the conv's full-size input or recompute the
conv, and it would update BatchNorm's running statistics twice.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SLICES = 8  # channel slices (each holds whole GroupNorm groups)


def group_norm_gelu_batch_norm_conv(
    x: torch.Tensor, group_norm: nn.GroupNorm, batch_norm: nn.BatchNorm2d, conv: nn.Conv2d
) -> torch.Tensor:
    """``conv(batch_norm(gelu(group_norm(x))))``; when autograd would record it, recomputed in the backward.

    Without gradients (inference, ``torch.no_grad``) this is the modules' own forward, and so it is
    for any subclass of the three (``SyncBatchNorm``, which ``dense train`` uses on several GPUs,
    normalises with statistics across processes, which the slices here do not).
    """
    params = [group_norm.weight, group_norm.bias, batch_norm.weight, batch_norm.bias, conv.weight, conv.bias]
    exact_types = (type(group_norm), type(batch_norm), type(conv)) == (nn.GroupNorm, nn.BatchNorm2d, nn.Conv2d)
    records = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in [x, *params])
    if not (records and exact_types):
        return conv(batch_norm(F.gelu(group_norm(x))))
    return _RecomputedTail.apply(x, _TailLayers(group_norm, batch_norm, conv), *params)


class _TailLayers:
    """The three modules' settings, read by the autograd function (which only sees tensors)."""

    def __init__(self, group_norm: nn.GroupNorm, batch_norm: nn.BatchNorm2d, conv: nn.Conv2d) -> None:
        if group_norm.num_groups % SLICES or conv.groups != 1 or isinstance(conv.padding, str):
            raise ValueError(
                f"the recomputed tail needs GroupNorm groups divisible by {SLICES}, an ungrouped conv and "
                f"numeric padding (got {group_norm.num_groups} groups, conv groups {conv.groups}, padding {conv.padding})"
            )
        self.groups_per_slice, self.group_eps = group_norm.num_groups // SLICES, group_norm.eps
        self.batch_stats = batch_norm.training or not batch_norm.track_running_stats
        self.running = (batch_norm.running_mean, batch_norm.running_var) if batch_norm.track_running_stats else None
        self.momentum = self._momentum(batch_norm)
        self.batch_eps = batch_norm.eps
        self.stride, self.padding, self.dilation = list(conv.stride), list(conv.padding), list(conv.dilation)

    @staticmethod
    def _momentum(batch_norm: nn.BatchNorm2d) -> float:
        """As ``nn.BatchNorm2d.forward`` does: count the batch, and average cumulatively without momentum."""
        if not (batch_norm.training and batch_norm.track_running_stats):
            return 0.0
        batch_norm.num_batches_tracked.add_(1)
        return 1.0 / float(batch_norm.num_batches_tracked) if batch_norm.momentum is None else batch_norm.momentum

    def norms(self, x_part: torch.Tensor, params: list, part: slice, update_running: bool) -> torch.Tensor:
        """GroupNorm -> GELU -> BatchNorm of the channels ``part`` (``x_part`` and the four norm parameters
        are that slice). Training-mode running statistics change only if ``update_running``."""
        gn_w, gn_b, bn_w, bn_b = params
        hidden = F.gelu(F.group_norm(x_part, self.groups_per_slice, gn_w, gn_b, self.group_eps))
        running = (None, None)
        if self.running is not None and (update_running or not self.batch_stats):
            running = (self.running[0][part], self.running[1][part])
        return F.batch_norm(hidden, *running, bn_w, bn_b, self.batch_stats, self.momentum, self.batch_eps)

    def conv(self, hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(hidden, weight, None, self.stride, self.padding, self.dilation)

    def conv_backward(self, grad_out: torch.Tensor, hidden: torch.Tensor, weight: torch.Tensor):
        """(grad of the conv's input, grad of its weight) for one channel slice, in ``grad_out``'s dtype."""
        grad_in, grad_weight, _ = torch.ops.aten.convolution_backward(
            grad_out, hidden.to(grad_out.dtype), weight.to(grad_out.dtype), None,
            self.stride, self.padding, self.dilation, False, [0, 0], 1, [True, True, False],
        )  # fmt: skip
        return grad_in, grad_weight


def _slices(channels: int) -> list[slice]:
    step = channels // SLICES
    return [slice(start, start + step) for start in range(0, channels, step)]


def _sliced(params, part: slice) -> list:
    return [None if p is None else p[part] for p in params]


class _RecomputedTail(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, layers: _TailLayers, *params):
        ctx.layers = layers
        ctx.autocast = (torch.is_autocast_enabled(x.device.type), torch.get_autocast_dtype(x.device.type))
        ctx.save_for_backward(x, *params)
        conv_weight, conv_bias = params[4], params[5]
        out = None
        for part in _slices(x.shape[1]):
            hidden = layers.norms(x[:, part], _sliced(params[:4], part), part, update_running=True)
            term = layers.conv(hidden, conv_weight[:, part])
            term = term.to(torch.promote_types(term.dtype, torch.float32))  # sum the slices in float32 at least
            out = term if out is None else out.add_(term)
        if conv_bias is not None:
            out.add_(conv_bias.to(out.dtype)[:, None, None])
        return out.to(ctx.autocast[1] if ctx.autocast[0] else x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, *params = ctx.saved_tensors
        layers: _TailLayers = ctx.layers
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        param_grads = [None if p is None else torch.zeros_like(p) for p in params]
        for part in _slices(x.shape[1]):
            x_part = x[:, part].detach().requires_grad_(grad_x is not None)
            norm_params = [None if p is None else p.detach()[part].requires_grad_() for p in params[:4]]
            with torch.enable_grad(), torch.autocast(x.device.type, dtype=ctx.autocast[1], enabled=ctx.autocast[0]):
                hidden = layers.norms(x_part, norm_params, part, update_running=False)
            grad_hidden, param_grads[4][:, part] = layers.conv_backward(grad_out, hidden.detach(), params[4][:, part])
            inputs = [t for t in [x_part, *norm_params] if t is not None and t.requires_grad]
            grads = dict(zip(map(id, inputs), torch.autograd.grad(hidden, inputs, grad_hidden.to(hidden.dtype))))
            if grad_x is not None:
                grad_x[:, part] = grads[id(x_part)]
            for index, param in enumerate(norm_params):
                if param is not None:
                    param_grads[index][part] = grads[id(param)]
        if params[5] is not None:
            param_grads[5] = grad_out.sum((0, 2, 3), dtype=torch.promote_types(grad_out.dtype, torch.float32)).to(params[5].dtype)
        return (grad_x, None, *param_grads)
