import torch
from torch import nn

from llava_vitsplit.split import ConvFusion, DeformableConv3x3


def test_deformable_conv_with_zero_offsets_equals_plain_conv():
    dcn = DeformableConv3x3(8)
    plain = nn.Conv2d(8, 8, kernel_size=3, padding=1, bias=False)
    plain.weight.data.copy_(dcn.conv.weight.data)
    x = torch.randn(2, 8, 5, 7)
    assert dcn.conv.bias is None and dcn.offset.out_channels == 18
    torch.testing.assert_close(dcn(x), plain(x), rtol=1e-4, atol=1e-5)


def test_offsets_learn_and_move_the_sampling():
    dcn = DeformableConv3x3(4)
    x = torch.randn(1, 4, 6, 6)
    dcn(x).square().sum().backward()
    assert dcn.offset.weight.grad.abs().sum() > 0
    before = dcn(x).detach()
    with torch.no_grad():
        dcn.offset.bias.fill_(0.5)
    assert not torch.allclose(dcn(x), before)


def test_conv_fusion_has_no_norm_layers():
    block = ConvFusion(16, 8)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) for m in block.modules())
    assert block(torch.randn(1, 16, 4, 4)).shape == (1, 8, 4, 4)


def test_deformable_conv_runs_in_bf16_and_under_cpu_autocast():
    dcn = DeformableConv3x3(8)
    with torch.no_grad():
        dcn.offset.bias.fill_(0.3)  # non-zero offsets: the deformable path proper
    x = torch.randn(2, 8, 5, 5)
    reference = dcn(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_out = dcn(x.bfloat16())
    assert autocast_out.dtype == torch.bfloat16
    torch.testing.assert_close(autocast_out.float(), reference, rtol=0.05, atol=0.05)
    dcn_bf16 = dcn.to(torch.bfloat16)
    out = dcn_bf16(x.bfloat16())
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16 and dcn_bf16.conv.weight.grad is not None
