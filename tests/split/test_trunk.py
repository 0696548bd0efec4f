import torch

from llava_vitsplit.split import ViTSplit, adapt_backbone, config_for_backbone, frozen_hidden_states

from .conftest import tiny_dinov2


def _model(**fields):
    backbone = tiny_dinov2()
    fields = {"num_task_layers": 2, "num_prior_layers": 3, "prior_start_layer": 1, **fields}
    return ViTSplit(backbone, config_for_backbone(backbone, **fields))


def test_trunk_stops_at_the_deepest_needed_state():
    backbone = tiny_dinov2()
    calls = []
    for index, block in enumerate(backbone.encoder.layer):
        block.register_forward_hook(lambda *_, i=index: calls.append(i))
    states = frozen_hidden_states(adapt_backbone(backbone), torch.randn(1, 3, 32, 32), {2, 4})
    assert sorted(states) == [2, 4]
    assert calls == [0, 1, 2, 3]  # blocks 5 and 6 never run


def test_trunk_keeps_no_graph_and_gets_no_gradient():
    model = _model(split_point=5)
    states = model.trunk(torch.randn(1, 3, 32, 32), model.config.needed_hidden_states)
    assert all(not s.requires_grad and s.grad_fn is None for s in states.values())


def test_optimiser_step_leaves_the_trunk_untouched():
    model = _model()
    before = {k: v.clone() for k, v in model.trunk.state_dict().items()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(not p.requires_grad for p in model.trunk.parameters())
    optimiser = torch.optim.AdamW(trainable, lr=1e-2)
    model.train()
    assert not model.trunk.backbone.training  # frozen backbone stays in eval mode
    model(torch.randn(2, 3, 32, 32)).square().mean().backward()
    optimiser.step()
    assert all(p.grad is None for p in model.trunk.parameters())
    for key, value in model.trunk.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)
    assert all(p.grad is not None for p in trainable), "every trainable part must receive a gradient"
