import numpy as np
import pytest
from PIL import Image, ImageFile

from llava_vitsplit.serve.errors import ChatInputError
from llava_vitsplit.serve.image_input import MAX_IMAGE_SIDE, read_image


def test_a_photo_opens_as_rgb_at_its_size(example_photos):
    photo = read_image(example_photos[0])
    assert photo.image.mode == "RGB" and photo.image.size == photo.original_size == (451, 300)
    assert not photo.downscaled and photo.name == "chelsea_the_cat.jpg"


def test_a_file_that_is_not_an_image_is_named_without_the_server_path(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list: milk, eggs")
    with pytest.raises(ChatInputError) as error:
        read_image(notes)
    assert str(error.value).startswith("notes.txt is not an image") and str(tmp_path) not in str(error.value)


def test_a_truncated_image_is_reported(tmp_path, example_photos, monkeypatch):
    # Pillow's default; lmms-eval turns it on for the whole process when imported (the eval tests do).
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(example_photos[0].read_bytes()[:2000])
    with pytest.raises(ChatInputError, match="broken.jpg could not be decoded"):
        read_image(broken)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ChatInputError, match="Image file not found: .*nowhere.png"):
        read_image(tmp_path / "nowhere.png")


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_a_huge_image_is_downscaled(tmp_path, suffix):
    width, height = 6000, 4000
    gradient = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None].repeat(height, 0).repeat(3, 2)
    path = tmp_path / f"huge.{suffix}"
    Image.fromarray(gradient).save(path)
    photo = read_image(path)
    assert photo.original_size == (width, height) and photo.downscaled
    assert photo.image.size == (MAX_IMAGE_SIDE, round(MAX_IMAGE_SIDE * height / width)) == (1024, 683)
    assert "6000x4000" in photo.describe_downscale() and "1024x683" in photo.describe_downscale()


def test_a_decompression_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above twice this
    path = tmp_path / "bomb.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(ChatInputError, match="bomb.png is too large to open safely"):
        read_image(path)


def test_exif_rotation_is_applied_and_transparency_becomes_white(tmp_path):
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    Image.new("RGB", (60, 20), (200, 10, 10)).save(rotated, exif=exif)
    photo = read_image(rotated)
    assert photo.image.size == photo.original_size == (20, 60)

    transparent = tmp_path / "logo.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(transparent)
    assert read_image(transparent).image.getpixel((0, 0)) == (255, 255, 255)


def test_an_unreachable_url_is_a_message():
    with pytest.raises(ChatInputError, match="Could not download the image http://127.0.0.1:9/x.png"):
        read_image("http://127.0.0.1:9/x.png")
