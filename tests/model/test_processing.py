import numpy as np
import pytest
import torch
from PIL import Image

from llava_vitsplit.model import LlavaViTSplitProcessor
from llava_vitsplit.model.image_processing import (
    apply_aspect_ratio,
    expand_to_square,
    mean_color,
    output_size,
)
from llava_vitsplit.model.tokenizer import prepare_tokenizer

from .tiny import GRID_TOKENS, TOWER_SIZE, random_image, tiny_tokenizer, tiny_tower


@pytest.fixture(scope="module")
def processor():
    tokenizer = tiny_tokenizer()
    prepare_tokenizer(tokenizer)
    _, image_processor = tiny_tower("dinov2")
    return LlavaViTSplitProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8)


def test_pad_expands_to_a_square_in_the_mean_colour(processor):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    padded = apply_aspect_ratio(image, "pad", processor.image_processor)
    assert padded.size == (40, 40)
    fill = mean_color(processor.image_processor)
    assert fill == (124, 116, 104)  # ImageNet mean * 255
    assert padded.getpixel((0, 0)) == fill and padded.getpixel((20, 20)) == (255, 0, 0)
    assert expand_to_square(image.rotate(90, expand=True), fill).size == (40, 40)


def test_aspect_ratio_modes_differ_as_llava_does(processor):
    # left half black, right half white, 2:1: 'square' centre-crops, 'pad' keeps both halves, 'resize' stretches.
    pixels = np.zeros((32, 64, 3), dtype=np.uint8)
    pixels[:, 32:] = 255
    image = Image.fromarray(pixels)
    out = {mode: processor.process_images([image], image_aspect_ratio=mode) for mode in ("pad", "square", "resize")}
    assert all(tensor.shape == (1, 3, TOWER_SIZE, TOWER_SIZE) for tensor in out.values())
    top_row = {mode: tensor[0, 0, 0] for mode, tensor in out.items()}
    assert top_row["pad"][0] == top_row["pad"][-1]  # mean-colour bands above and below
    assert top_row["resize"][0] < top_row["resize"][-1]  # black left, white right, no band
    assert not torch.equal(out["square"], out["resize"])
    assert output_size(processor.image_processor) == (TOWER_SIZE, TOWER_SIZE)


def test_each_image_placeholder_becomes_the_patch_grid(processor):
    assert processor.image_seq_length == GRID_TOKENS
    batch = processor(
        text=["<image>\nWhat is this?", "Compare <image> and <image>."],
        images=[random_image(), random_image(seed=1), random_image(seed=2)],
        padding=True,
        return_tensors="pt",
    )
    counts = (batch["input_ids"] == processor.image_token_id).sum(dim=1)
    assert counts.tolist() == [GRID_TOKENS, 2 * GRID_TOKENS]
    assert batch["pixel_values"].shape == (3, 3, TOWER_SIZE, TOWER_SIZE)
    text_only = processor(text=["Just text, no image."], return_tensors="pt")
    assert "pixel_values" not in text_only and (text_only["input_ids"] != processor.image_token_id).all()


def test_placeholder_and_image_counts_must_agree(processor):
    with pytest.raises(ValueError, match="Found total 2 <image> tokens and 1 images"):
        processor(text=["<image> and <image>"], images=[random_image()])
    with pytest.raises(ValueError, match="Found total 1 <image> tokens and 2 images"):
        processor(text=["<image> only"], images=[random_image(), random_image(seed=1)])
    with pytest.raises(ValueError, match="no images were passed"):
        processor(text=["<image> but nothing"])


def test_images_from_files_and_undecodable_files_are_named(processor, tmp_path):
    good = tmp_path / "photo.png"
    random_image().save(good)
    assert processor(text=["<image>"], images=[str(good)], return_tensors="pt")["pixel_values"].shape[0] == 1
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="cannot decode image .*broken.jpg"):
        processor.process_images([bad])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        processor(text=["<image>"], images=[str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match="image_aspect_ratio='anyres' is not supported"):
        processor.process_images([good], image_aspect_ratio="anyres")


def test_save_and_load(processor, tmp_path):
    processor.image_aspect_ratio = "resize"
    processor.save_pretrained(tmp_path)
    loaded = LlavaViTSplitProcessor.from_pretrained(tmp_path)
    from transformers import AutoProcessor

    assert isinstance(AutoProcessor.from_pretrained(tmp_path), LlavaViTSplitProcessor)
    assert (loaded.image_aspect_ratio, loaded.patch_size, loaded.image_seq_length) == ("resize", 8, GRID_TOKENS)
    image = random_image(60, 20)
    torch.testing.assert_close(loaded.process_images([image]), processor.process_images([image]))
    processor.image_aspect_ratio = "pad"


def test_tokenizer_without_image_token_is_refused():
    _, image_processor = tiny_tower("clip")
    with pytest.raises(ValueError, match="has no '<image>' token"):
        LlavaViTSplitProcessor(image_processor=image_processor, tokenizer=tiny_tokenizer(), patch_size=8)
