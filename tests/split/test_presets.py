import json
import subprocess
import sys

import pytest

from llava_vitsplit.commands.params import count_trainable_parameters
from llava_vitsplit.split import PRESETS, get_preset

# (preset, paper's trainable total in millions, relative tolerance): Tables 1, 6, 11 and DESIGN.md 2.1.
PAPER_TOTALS = [
    ("ade20k-s", 10.23, 1e-3),
    ("ade20k-b", 40.51, 1e-3),
    ("ade20k-l", 88.64, 1e-3),
    ("nyu-s", 9.3, 5e-3),
    ("nyu-b", 37.0, 5e-3),
    ("nyu-l", 65.5, 5e-3),
    ("cityscapes-l", 164.1, 1e-3),
    ("llava-official", 182.0, 5e-3),
]


@pytest.mark.parametrize("preset, millions, tolerance", PAPER_TOTALS)
def test_trainable_totals_match_the_paper(preset, millions, tolerance):
    assert count_trainable_parameters(preset)["total"] / 1e6 == pytest.approx(millions, rel=tolerance)


@pytest.mark.parametrize(
    "preset, task_head, prior_head, fusion",
    [("ade20k-s", 5.4, 2.0, 1.6), ("ade20k-b", 21.3, 7.8, 6.6)],  # Table 6, read as differences
)
def test_table6_breakdown(preset, task_head, prior_head, fusion):
    counts = count_trainable_parameters(preset)
    assert counts["task_head"] / 1e6 == pytest.approx(task_head, abs=0.1)
    assert counts["prior_head"] / 1e6 == pytest.approx(prior_head, abs=0.05)
    assert counts["fusion"] / 1e6 == pytest.approx(fusion, abs=0.1)


def test_every_table10_row_has_a_preset():
    expected = {
        "ade20k-s",
        "ade20k-b",
        "ade20k-l",
        "ade20k-l-896",
        "ade20k-g-896",
        "cityscapes-l",
        "pascal-context-l",
        "nyu-s",
        "nyu-b",
        "nyu-l",
        "coco-s",
        "coco-b",
        "coco-l",
        "llava",
        "llava-official",
    }
    assert expected <= set(PRESETS)
    assert get_preset("coco-s").patch_size == 16


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown ViT-Split preset 'ade20k-xl'; available: ade20k-s"):
        get_preset("ade20k-xl")


def _cli(*args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "llava_vitsplit", *args], check=True, capture_output=True, text=True
    ).stdout


def test_params_cli_prints_one_json_object():
    result = json.loads(_cli("params", "ade20k-s", "--json"))
    assert set(result) == {"preset", "task_head", "prior_head", "fusion", "head", "total"}
    assert result["total"] == sum(result[k] for k in ("task_head", "prior_head", "fusion", "head"))


def test_presets_cli_lists_every_preset_with_its_settings():
    rows = {row["name"]: row for row in json.loads(_cli("presets", "--json"))}
    assert set(rows) == set(PRESETS)
    assert (rows["ade20k-l"]["K_t"], rows["ade20k-l"]["K_p"], rows["ade20k-l"]["b"]) == (4, 8, 2)
    assert rows["nyu-s"]["resolution"] == "416x544"
    table = _cli("presets")
    assert "ade20k-g-896" in table and "dinov2-g" in table
