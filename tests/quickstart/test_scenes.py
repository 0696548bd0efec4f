"""The scenes sample dataset: determinism, LLaVA format, held-out split, answers, scoring, CLI."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llava_vitsplit.cli import COMMAND_MODULES, main
from llava_vitsplit.commands import make_scenes as make_scenes_command
from llava_vitsplit.quickstart.scene_dataset import (
    DEFAULT_OUT_DIR,
    FORMAT_VERSION,
    HELDOUT_FILE,
    MANIFEST_FILE,
    HeldoutQuestion,
    HeldoutSet,
    SceneDataConfig,
    load_heldout,
    make_scenes,
)
from llava_vitsplit.quickstart.scene_scoring import format_score_table, normalize_answer, score_predictions
from llava_vitsplit.quickstart.scenes import (
    COLOURS,
    POSITIONS,
    QUESTION_TYPES,
    SHAPES,
    Scene,
    ask,
    caption,
    is_heldout_layout,
    render_scene,
    sample_scene,
    scene_rng,
)

TINY = SceneDataConfig(num_train=24, num_heldout=10, image_size=56, seed=3)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("scenes") / "out", TINY, progress=False)


def _read(path: Path):
    return json.loads(path.read_text())


def _all_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_two_runs_give_identical_files(tiny_data, tmp_path):
    again = make_scenes(tmp_path / "again", TINY, progress=False)
    assert again.generated
    assert again.content_sha256 == tiny_data.content_sha256
    assert _all_files(again.out_dir) == _all_files(tiny_data.out_dir)


def test_a_fresh_process_with_another_hash_seed_writes_the_same_bytes(tiny_data, tmp_path):
    code = (
        "import sys; from llava_vitsplit.quickstart.scene_dataset import SceneDataConfig, make_scenes; "
        "print(make_scenes(sys.argv[1], SceneDataConfig(24, 10, 56, 3), progress=False).content_sha256)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "fresh")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == tiny_data.content_sha256
    assert _all_files(tmp_path / "fresh") == _all_files(tiny_data.out_dir)


def test_other_seed_gives_other_data(tiny_data, tmp_path):
    other = make_scenes(tmp_path / "other", SceneDataConfig(24, 10, 56, seed=4), progress=False)
    assert other.content_sha256 != tiny_data.content_sha256
    assert _read(other.pretrain_json) != _read(tiny_data.pretrain_json)


def test_image_i_does_not_depend_on_how_many_images_are_made(tiny_data, tmp_path):
    fewer = make_scenes(tmp_path / "fewer", SceneDataConfig(5, 2, 56, seed=3), progress=False)
    for name in ("train_000004.png", "heldout_000001.png"):
        assert (fewer.out_dir / "images" / name).read_bytes() == (
            tiny_data.out_dir / "images" / name
        ).read_bytes()


def _check_llava_records(records: list, folder: Path, expect_images: bool | None) -> None:
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    for record in records:
        assert set(record) <= {"id", "image", "conversations"}
        has_image = "image" in record
        if expect_images is not None:
            assert has_image == expect_images
        if has_image:
            image = folder / record["image"]
            assert image.is_file() and not Path(record["image"]).is_absolute()
            with Image.open(image) as img:
                assert img.mode == "RGB" and img.size == (TINY.image_size, TINY.image_size)
        turns = record["conversations"]
        assert len(turns) >= 2 and len(turns) % 2 == 0
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        assert all(isinstance(t["value"], str) and t["value"] for t in turns)
        text = "".join(t["value"] for t in turns)
        assert text.count("<image>") == (1 if has_image else 0)
        if has_image:
            assert turns[0]["value"].startswith("<image>")


def test_pretrain_json_is_llava_plain_format(tiny_data):
    records = _read(tiny_data.pretrain_json)
    assert len(records) == TINY.num_train
    _check_llava_records(records, tiny_data.out_dir, expect_images=True)
    for record in records:
        human, gpt = record["conversations"]
        assert human["value"] == "<image>"
        assert gpt["value"].startswith("A ") and gpt["value"].endswith(".")


def test_finetune_json_is_llava_multiturn_with_captions_and_text_only_records(tiny_data):
    records = _read(tiny_data.finetune_json)
    _check_llava_records(records, tiny_data.out_dir, expect_images=None)
    with_image = [r for r in records if "image" in r]
    text_only = [r for r in records if "image" not in r]
    assert len(with_image) == TINY.num_train and len(text_only) == 1  # one per 20 training images
    assert all(len(r["conversations"]) >= 10 for r in with_image)  # several questions packed per image
    captions = {r["image"]: r["conversations"][1]["value"] for r in _read(tiny_data.pretrain_json)}
    with_caption = [r for r in with_image if r["conversations"][-1]["value"] == captions[r["image"]]]
    assert 0 < len(with_caption) < len(with_image)
    # The caption gives every answer away, so it only ever comes last.
    for record in with_image:
        assert captions[record["image"]] not in [t["value"] for t in record["conversations"][1:-1:2]]
    for record in text_only:
        for question, answer in zip(record["conversations"][::2], record["conversations"][1::2], strict=True):
            if match := re.fullmatch(r"What is (\d) plus (\d)\?", question["value"]):
                assert answer["value"] == str(int(match[1]) + int(match[2]))
            else:
                words = re.fullmatch(r'How many words are in "(.+)"\?', question["value"])[1]
                assert answer["value"] == str(len(words.split()))


def test_more_conversations_per_image_ask_the_same_images_new_questions(tiny_data, tmp_path):
    config = SceneDataConfig(**{**asdict(TINY), "conversations_per_image": 3})
    data = make_scenes(tmp_path / "c3", config, progress=False)
    records = _read(data.finetune_json)
    with_image = [r for r in records if "image" in r]
    assert len(with_image) == 3 * TINY.num_train
    assert len({r["id"] for r in records}) == len(records)
    assert len(records) - len(with_image) == 3 * TINY.num_train // 20  # text-only: one per 20 conversations
    single = {r["id"]: r for r in _read(tiny_data.finetune_json)}
    by_image: dict[str, list[dict]] = {}
    for record in with_image:
        by_image.setdefault(record["image"], []).append(record)
    assert len(by_image) == TINY.num_train and all(len(v) == 3 for v in by_image.values())
    for first, *others in by_image.values():
        assert first == single[first["id"]]  # the first conversation is the one-per-image data's
        assert all(o["id"].startswith(first["id"] + "-") for o in others)
    # The other conversations are new draws: most differ from the first in their questions.
    questions = [[tuple(t["value"] for t in r["conversations"][::2]) for r in v] for v in by_image.values()]
    assert sum(len(set(q)) == 3 for q in questions) > TINY.num_train // 2
    # The images, captions and held-out questions are those of the one-per-image data.
    for name in ("pretrain.json", "heldout.json", "scenes.json"):
        assert (data.out_dir / name).read_bytes() == (tiny_data.out_dir / name).read_bytes()


@pytest.mark.parametrize("probability", [0.0, 1.0])
def test_caption_probability_sets_which_conversations_end_with_the_caption(tiny_data, tmp_path, probability):
    config = SceneDataConfig(**{**asdict(TINY), "caption_probability": probability})
    data = make_scenes(tmp_path / "captions", config, progress=False)
    captions = {r["image"]: r["conversations"][1]["value"] for r in _read(data.pretrain_json)}
    default = {r["id"]: r for r in _read(tiny_data.finetune_json)}
    for record in _read(data.finetune_json):
        if "image" not in record:
            continue
        ends_with_caption = record["conversations"][-1]["value"] == captions[record["image"]]
        assert ends_with_caption == (probability == 1.0), record["id"]
        # Only the caption turn changes: the questions are those of the default data.
        assert _without_caption(record, captions) == _without_caption(default[record["id"]], captions)


def _without_caption(record: dict, captions: dict[str, str]) -> list[dict]:
    turns = record["conversations"]
    return turns[:-2] if turns[-1]["value"] == captions[record["image"]] else turns


def test_heldout_images_and_layouts_are_disjoint_from_train(tiny_data):
    specs = _read(tiny_data.out_dir / "scenes.json")
    train = [s for s in specs if s["split"] == "train"]
    heldout = [s for s in specs if s["split"] == "heldout"]
    assert len(train) == TINY.num_train and len(heldout) == TINY.num_heldout
    train_images = {r["image"] for r in _read(tiny_data.finetune_json) if "image" in r}
    heldout_images = {q.image for q in load_heldout(tiny_data.heldout_json).questions}
    assert train_images == {s["image"] for s in train}
    assert heldout_images == {s["image"] for s in heldout}
    assert not train_images & heldout_images
    train_bytes = {(tiny_data.out_dir / i).read_bytes() for i in train_images}
    assert not train_bytes & {(tiny_data.out_dir / i).read_bytes() for i in heldout_images}
    train_layouts = {Scene.from_dict(s["scene"]).layout_key() for s in train}
    assert not train_layouts & {Scene.from_dict(s["scene"]).layout_key() for s in heldout}


def _expected_answer(scene: Scene, question: str, question_type: str) -> str:
    """Re-derive an answer from the spec by reading the question's words, independently of `ask`."""
    words = re.findall(r"[a-z]+", question.lower())
    shape = next((w for w in words if w in SHAPES), None)
    colour = next((w for w in words if w in COLOURS), None)
    matches = [o for o in scene.objects if shape in (None, o.shape) and colour in (None, o.colour)]
    if question_type == "count":
        return str(len(scene.objects))
    if question_type == "presence":
        return "Yes" if matches else "No"
    assert len(matches) == 1, f"{question!r} must name exactly one object of {scene.layout_key()}"
    value = {"colour": matches[0].colour, "shape": matches[0].shape, "position": matches[0].position}[
        question_type
    ]
    return value.capitalize()


def test_every_answer_follows_from_the_scene_spec(tiny_data):
    specs = {s["image"]: Scene.from_dict(s["scene"]) for s in _read(tiny_data.out_dir / "scenes.json")}
    checked = 0
    for record in _read(tiny_data.finetune_json):
        if "image" not in record:
            continue
        scene = specs[record["image"]]
        turns = record["conversations"]
        for question, answer in zip(turns[::2], turns[1::2], strict=True):
            text = question["value"].removeprefix("<image>\n")
            if answer["value"] == caption(scene):
                continue
            question_type = _type_of(text)
            assert answer["value"] == _expected_answer(scene, text, question_type), (record["id"], text)
            checked += 1
    heldout = load_heldout(tiny_data.heldout_json)
    for q in heldout.questions:
        assert q.answer == _expected_answer(specs[q.image], q.question, q.type), q
        checked += 1
    assert checked > 5 * TINY.num_train
    assert sorted({q.type for q in heldout.questions}) == sorted(QUESTION_TYPES)
    presence = [q.answer for q in heldout.questions if q.type == "presence"]
    assert presence.count("Yes") == presence.count("No") == TINY.num_heldout // 2


def test_conversations_spread_questions_over_objects_before_reusing_one(tiny_data):
    """A turn about an object already talked about could be answered by copying from the text."""
    specs = {s["image"]: Scene.from_dict(s["scene"]) for s in _read(tiny_data.out_dir / "scenes.json")}
    spread = 0
    for record in _read(tiny_data.finetune_json):
        if "image" not in record:
            continue
        scene = specs[record["image"]]
        referenced = []
        for question, answer in zip(record["conversations"][::2], record["conversations"][1::2], strict=True):
            text = question["value"].removeprefix("<image>\n")
            if answer["value"] == caption(scene) or _type_of(text) == "count" or answer["value"] == "No":
                continue
            words = set(re.findall(r"[a-z]+", text.lower()))
            (obj,) = [o for o in scene.objects if o.shape in words or o.colour in words]
            referenced.append(obj)
        first = referenced[: len(scene.objects)]
        assert len(set(first)) == len(first), (record["id"], [o.name for o in referenced])
        spread += len(first) > 1
    assert spread > TINY.num_train // 2


def test_ask_rejects_impossible_requests():
    scene = sample_scene(scene_rng(0, "train", 2), "train")
    other = sample_scene(scene_rng(0, "train", 3), "train").objects[0]
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not in the scene"):
        ask(scene, "colour", rng, about=other)
    with pytest.raises(ValueError, match="count question is about the whole scene"):
        ask(scene, "count", rng, about=scene.objects[0])
    with pytest.raises(ValueError, match="cannot be about"):
        ask(scene, "presence", rng, about=scene.objects[0], presence_answer=False)
    with pytest.raises(ValueError, match="unknown question type 'size'"):
        ask(scene, "size", rng)
    assert ask(scene, "presence", rng, about=scene.objects[0]).answer == "Yes"


def _type_of(question: str) -> str:
    if question.startswith("How many"):
        return "count"
    if question.startswith("Is there"):
        return "presence"
    if question.startswith("Where"):
        return "position"
    if "shape" in question:
        return "shape"
    assert "colour" in question, question
    return "colour"


def test_captions_name_every_object_in_reading_order():
    scene = sample_scene(scene_rng(0, "train", 0), "train")
    text = caption(scene)
    positions = [text.index(obj.name) for obj in scene.objects]
    assert positions == sorted(positions)
    assert text.count(" and ") == (1 if len(scene.objects) > 1 else 0)


def test_rendered_pixels_show_the_spec():
    """Each object's centre has its palette colour; the image corners are unsaturated background."""
    for index in range(40):
        scene = sample_scene(scene_rng(1, "train", index), "train")
        pixels = np.asarray(render_scene(scene, 112), dtype=np.int32)
        for obj in scene.objects:
            centre = pixels[round(obj.y * 112), round(obj.x * 112)]
            assert np.abs(centre - np.array(COLOURS[obj.colour])).max() <= 2, (scene, obj)
        for corner in (pixels[1, 1], pixels[1, -2], pixels[-2, 1], pixels[-2, -2]):
            assert corner.max() - corner.min() < 60  # far less saturated than any palette colour
    palette = np.array(list(COLOURS.values()))
    assert (palette.max(axis=1) - palette.min(axis=1)).min() >= 2 * 60


def _half_extent(obj) -> float:
    return (0.53 if obj.shape == "star" else 0.5) * obj.size  # a star's spikes reach a little further


def test_objects_stay_inside_the_image_and_apart():
    for index in range(300):
        scene = sample_scene(scene_rng(2, "heldout", index), "heldout")
        for obj in scene.objects:
            reach = _half_extent(obj)
            assert reach < obj.x < 1 - reach and reach < obj.y < 1 - reach
        for a in scene.objects:
            for b in scene.objects:
                if a is not b:  # bounding boxes apart
                    assert max(abs(a.x - b.x), abs(a.y - b.y)) > _half_extent(a) + _half_extent(b)


def test_split_partition_and_uniform_counts():
    counts = {split: [] for split in ("train", "heldout")}
    for split in counts:
        for index in range(400):
            scene = sample_scene(scene_rng(0, split, index), split)
            assert is_heldout_layout(scene) == (split == "heldout")
            counts[split].append(len(scene.objects))
    for values in counts.values():
        histogram = np.bincount(values, minlength=5)[1:]
        assert histogram.min() > 70  # 1-4 objects, about 100 each


def test_presence_questions_can_be_forced_and_are_correct():
    rng = np.random.default_rng(0)
    for index in range(50):
        scene = sample_scene(scene_rng(0, "train", index), "train")
        for want in (True, False):
            question = ask(scene, "presence", rng, presence_answer=want)
            assert question.answer == ("Yes" if want else "No")
            assert _expected_answer(scene, question.question, "presence") == question.answer


def test_rerun_with_same_config_is_a_noop_and_a_new_config_regenerates(tmp_path):
    out = tmp_path / "scenes"
    first = make_scenes(out, SceneDataConfig(6, 2, 40, 0), progress=False)
    assert first.generated
    stamp = (out / MANIFEST_FILE).stat().st_mtime_ns
    second = make_scenes(out, SceneDataConfig(6, 2, 40, 0), progress=False)
    assert not second.generated and (out / MANIFEST_FILE).stat().st_mtime_ns == stamp
    (out / "images" / "train_000000.png").write_bytes(b"damaged")
    assert make_scenes(out, SceneDataConfig(6, 2, 40, 0), progress=False).generated
    smaller = make_scenes(out, SceneDataConfig(3, 1, 40, 0), progress=False)
    assert smaller.generated
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "heldout_000000.png",
        "train_000000.png",
        "train_000001.png",
        "train_000002.png",
    ]
    manifest = _read(out / MANIFEST_FILE)
    assert manifest["config"] == asdict(SceneDataConfig(3, 1, 40, 0))
    assert manifest["content_sha256"] == smaller.content_sha256
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_an_interrupted_run_is_redone_by_the_next(tmp_path, monkeypatch):
    out = tmp_path / "scenes"
    make_scenes(out, SceneDataConfig(4, 2, 40, 0), progress=False)
    real_rename = Path.rename
    calls = []

    def rename_then_fail(self, target):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename_then_fail)
    with pytest.raises(KeyboardInterrupt):
        make_scenes(out, SceneDataConfig(5, 2, 40, 0), progress=False)
    monkeypatch.undo()
    assert not (out / "pretrain.json").exists()  # half swapped: images moved, the JSON not yet
    assert _read(out / MANIFEST_FILE) == {"format_version": FORMAT_VERSION, "complete": False}
    redone = make_scenes(out, SceneDataConfig(5, 2, 40, 0), progress=False)
    assert redone.generated and len(_read(out / "pretrain.json")) == 5
    assert not make_scenes(out, SceneDataConfig(5, 2, 40, 0), progress=False).generated


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        make_scenes(tmp_path, SceneDataConfig(2, 1, 40, 0), progress=False)
    assert (tmp_path / "mine.txt").read_text() == "user data"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_train": 0},
        {"num_heldout": -1},
        {"image_size": 16},
        {"seed": -1},
        {"num_train": 2.5},
        {"conversations_per_image": 0},
        {"caption_probability": 1.5},
        {"caption_probability": True},
    ],
)
def test_bad_config_is_rejected_with_the_field_name(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"SceneDataConfig.{name}"):
        SceneDataConfig(**kwargs)


def test_scene_spec_validation_names_the_problem():
    scene = sample_scene(scene_rng(0, "train", 1), "train").to_dict()
    scene["objects"][0]["colour"] = "mauve"
    with pytest.raises(ValueError, match="unknown colour 'mauve'"):
        Scene.from_dict(scene)


def test_normalize_answer():
    assert normalize_answer("  The Red. ") == "red"
    assert normalize_answer("A circle!") == "circle"
    assert normalize_answer("an apple") == "apple"
    assert normalize_answer("Two") == "2"
    assert normalize_answer("three objects") == "3 objects"
    assert normalize_answer("Centre") == "center"
    assert normalize_answer("Yes, there is.") == "yes there is"
    assert normalize_answer("then") == "then"  # "the" is dropped as a word, not as a prefix


def _heldout(*rows) -> HeldoutSet:
    questions = tuple(
        HeldoutQuestion(f"q{i}", "images/x.png", "?", answer, qtype) for i, (qtype, answer) in enumerate(rows)
    )
    candidates = {
        "colour": ("Red", "Blue", "Green", "Yellow"),
        "count": ("1", "2", "3", "4"),
        "presence": ("Yes", "No"),
    }
    return HeldoutSet(questions, candidates)


def test_scoring_on_hand_worked_predictions():
    heldout = _heldout(
        ("colour", "Red"),
        ("colour", "Blue"),
        ("colour", "Red"),
        ("count", "2"),
        ("count", "3"),
        ("presence", "Yes"),
        ("presence", "Yes"),
        ("presence", "Yes"),
        ("presence", "No"),
    )
    predictions = {
        "q0": "red.",  # right: case and punctuation
        "q1": "The blue",  # right: leading article
        "q2": "purple",  # wrong, and not a candidate
        "q3": "Two",  # right: number word
        "q4": "4",  # wrong, but a candidate
        "q5": "Yes, there is a red circle.",  # right: first word decides presence
        "q6": "no",  # wrong
        "q7": "YES",  # right
        "q8": "maybe",  # wrong, not a candidate
    }
    report = score_predictions(heldout, predictions)
    rows = {row.type: row for row in report.per_type}
    assert (rows["colour"].correct, rows["colour"].total, rows["colour"].off_candidates) == (2, 3, 1)
    assert (rows["count"].correct, rows["count"].total, rows["count"].off_candidates) == (1, 2, 0)
    assert (rows["presence"].correct, rows["presence"].total, rows["presence"].off_candidates) == (2, 4, 1)
    assert rows["colour"].chance == pytest.approx(1 / 4) and rows["colour"].majority == pytest.approx(2 / 3)
    assert rows["colour"].baseline == pytest.approx(2 / 3)
    assert rows["count"].chance == pytest.approx(1 / 4) and rows["count"].majority == pytest.approx(1 / 2)
    # Three Yes out of four: the majority baseline (75%) beats the 50% coin flip, and is reported.
    assert rows["presence"].chance == pytest.approx(1 / 2) and rows["presence"].baseline == pytest.approx(
        3 / 4
    )
    assert report.overall.correct == 5 and report.overall.total == 9
    assert report.overall.accuracy == pytest.approx(5 / 9)
    assert report.overall.chance == pytest.approx((3 / 4 + 2 / 4 + 4 / 2) / 9)
    assert report.overall.majority == pytest.approx((2 + 1 + 3) / 9)
    table = format_score_table(report)
    lines = table.splitlines()
    assert lines[0].split() == ["type", "questions", "accuracy", "chance", "majority", "off-candidates"]
    assert lines[2].split() == ["colour", "3", "66.7%", "25.0%", "66.7%", "1"]
    assert lines[-1].split() == ["overall", "9", "55.6%", "36.1%", "66.7%", "2"]


def test_scoring_rejects_missing_and_unknown_predictions():
    heldout = _heldout(("colour", "Red"), ("count", "1"))
    with pytest.raises(ValueError, match="no prediction for 1"):
        score_predictions(heldout, {"q0": "red"})
    with pytest.raises(ValueError, match="unknown question ids"):
        score_predictions(heldout, {"q0": "red", "q1": "1", "q9": "x"})


def test_generated_heldout_chance_levels(tiny_data):
    heldout = load_heldout(tiny_data.heldout_json)
    assert {k: len(v) for k, v in heldout.candidates.items()} == {
        "colour": len(COLOURS),
        "count": 4,
        "presence": 2,
        "position": len(POSITIONS),
        "shape": len(SHAPES),
    }
    perfect = score_predictions(heldout, {q.question_id: q.answer.lower() + "." for q in heldout.questions})
    assert perfect.overall.accuracy == 1.0 and perfect.overall.off_candidates == 0
    rows = {row.type: row for row in perfect.per_type}
    assert rows["shape"].chance == pytest.approx(1 / 5) and rows["colour"].chance == pytest.approx(1 / 6)
    assert rows["presence"].majority == pytest.approx(0.5)


def test_load_heldout_names_the_bad_record(tiny_data, tmp_path):
    data = _read(tiny_data.heldout_json)
    data["questions"][3]["answer"] = "Magenta"
    bad = tmp_path / "heldout.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"questions\[3\].*'Magenta' is not among the"):
        load_heldout(bad)
    del data["questions"][3]["answer"]
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"questions\[3\] must have exactly the string fields"):
        load_heldout(bad)


def test_cli_defaults_match_the_config_and_generate(tmp_path, capsys):
    assert "llava_vitsplit.commands.make_scenes" in COMMAND_MODULES
    parser = argparse.ArgumentParser()
    make_scenes_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["make-sample-data"])
    assert Path(args.out) == DEFAULT_OUT_DIR
    defaults = SceneDataConfig()
    assert (
        args.num_train,
        args.num_heldout,
        args.image_size,
        args.seed,
        args.conversations_per_image,
        args.caption_probability,
    ) == (
        defaults.num_train,
        defaults.num_heldout,
        defaults.image_size,
        defaults.seed,
        defaults.conversations_per_image,
        defaults.caption_probability,
    )
    args = parser.parse_args(
        [
            "make-sample-data",
            "--out",
            str(tmp_path / "d"),
            "--num-train",
            "3",
            "--num-heldout",
            "1",
            "--image-size",
            "40",
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    assert "generated" in capsys.readouterr().out
    assert args.func(args) == 0
    assert "already up to date" in capsys.readouterr().out
    assert len(_read(tmp_path / "d" / "pretrain.json")) == 3


def test_make_scenes_is_the_command_and_make_sample_data_its_old_name(tmp_path, capsys):
    small = ["--num-train", "2", "--num-heldout", "1", "--image-size", "32", "--quiet"]
    assert main(["make-scenes", "--out", str(tmp_path / "new"), *small]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main(["make-sample-data", "--out", str(tmp_path / "old"), *small]) == 0
    assert "make-sample-data is now make-scenes" in capsys.readouterr().err
    assert (tmp_path / "old" / HELDOUT_FILE).is_file() and (tmp_path / "new" / HELDOUT_FILE).is_file()
