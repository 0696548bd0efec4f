"""`--padding_free`: a batch's samples end to end in one row give the padded batch's loss and gradients."""

import pytest
import torch

from llava_vitsplit.data.collator import LlavaDataCollator
from llava_vitsplit.data.tokenize import IGNORE_INDEX
from tests.model.tiny import GRID_TOKENS, IMAGE_TOKEN_ID, TOWER_SIZE, tiny_model


def sample(text_tokens: int, supervised: int, image: bool, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    prompt = [1] + [IMAGE_TOKEN_ID] * (GRID_TOKENS if image else 0)
    text = torch.randint(3, 60, (text_tokens,), generator=generator).tolist()
    ids = torch.tensor(prompt + text)
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[-supervised:] = ids[-supervised:]
    item = {"input_ids": ids, "labels": labels}
    if image:
        item["pixel_values"] = torch.randn(1, 3, TOWER_SIZE, TOWER_SIZE, generator=generator)
    return item


SAMPLES = [sample(12, 4, True, 0), sample(3, 2, True, 1), sample(20, 9, False, 2), sample(7, 7, True, 3)]


def loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_flat_batch_layout():
    flat = LlavaDataCollator(pad_token_id=0, padding_free=True)(SAMPLES)
    padded = LlavaDataCollator(pad_token_id=0)(SAMPLES)
    lengths = [len(s["input_ids"]) for s in SAMPLES]
    assert flat["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in flat
    assert flat["position_ids"][0].tolist() == [i for n in lengths for i in range(n)]
    assert flat["logits_to_keep"].sum() == padded["logits_to_keep"].sum() == 4 + 2 + 9 + 7
    # No position predicts the first token of the next sample.
    ends = torch.tensor(lengths).cumsum(0) - 1
    assert not flat["logits_to_keep"][0, ends].any()
    assert torch.equal(flat["shift_labels"], padded["shift_labels"])
    assert torch.equal(flat["pixel_values"], padded["pixel_values"])


@pytest.mark.parametrize("projector", ["vitsplit", "mlp2x_gelu"])
def test_padding_free_gives_the_padded_loss_and_gradients(projector):
    model = tiny_model(projector_type=projector).train()
    expected_loss, expected_grads = loss_and_grads(model, LlavaDataCollator(pad_token_id=0)(SAMPLES))
    loss, grads = loss_and_grads(model, LlavaDataCollator(pad_token_id=0, padding_free=True)(SAMPLES))
    torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-5)
    assert grads.keys() == expected_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], atol=1e-6, rtol=1e-4)


def test_samples_in_one_row_do_not_attend_to_each_other():
    model = tiny_model(projector_type="mlp2x_gelu")
    collate = LlavaDataCollator(pad_token_id=0, padding_free=True)
    changed = [SAMPLES[0], sample(3, 2, True, 99), *SAMPLES[2:]]  # the second sample, same length
    logits = [model(**{k: v for k, v in collate(s).items() if k not in ("logits_to_keep", "labels", "shift_labels")}).logits[0] for s in (SAMPLES, changed)]
    start, end = len(SAMPLES[0]["input_ids"]), len(SAMPLES[0]["input_ids"]) + len(SAMPLES[1]["input_ids"])
    assert not torch.allclose(logits[0][start:end], logits[1][start:end])
    torch.testing.assert_close(logits[0][:start], logits[1][:start])
    torch.testing.assert_close(logits[0][end:], logits[1][end:])  # later samples do not see it either
