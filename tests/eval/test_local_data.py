import io

import datasets
import pyarrow.parquet as pq
import pytest
from PIL import Image

from llava_vitsplit.eval.local_data import export_benchmark


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _pope_rows(image_path):
    return {
        "question_id": ["1"],
        "question": ["Is there a dog in the image?"],
        "answer": ["yes"],
        "category": ["random"],
        "image": [str(image_path)],
    }


def test_images_stored_as_file_paths_are_embedded(tmp_path):
    image_path = tmp_path / "photo.png"
    Image.new("RGB", (5, 3), (10, 20, 30)).save(image_path)
    source = tmp_path / "saved"
    dataset = datasets.Dataset.from_dict(_pope_rows(image_path)).cast_column("image", datasets.Image())
    datasets.DatasetDict({"test": dataset}).save_to_disk(str(source))
    output = export_benchmark("pope", str(source), tmp_path / "data")
    assert output == tmp_path / "data" / "pope" / "test.parquet"
    image_path.unlink()  # the copy must not depend on the original file
    cell = pq.read_table(output).to_pylist()[0]["image"]
    assert cell["bytes"] and Image.open(io.BytesIO(cell["bytes"])).getpixel((0, 0)) == (10, 20, 30)


def test_missing_columns_are_named(tmp_path):
    image_path = tmp_path / "photo.png"
    Image.new("RGB", (2, 2)).save(image_path)
    rows = _pope_rows(image_path)
    del rows["category"]
    source = tmp_path / "saved"
    datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image()).save_to_disk(str(source))
    with pytest.raises(ValueError, match=r"lacks the columns \['category'\]"):
        export_benchmark("pope", str(source), tmp_path / "data")
    with pytest.raises(ValueError, match="unknown benchmark"):
        export_benchmark("gqa", str(source), tmp_path / "data")
