"""The generated scenes on disk: PNG images, LLaVA-format JSON, held-out questions, a manifest.

Layout of the output folder (the LLaVA `--image_folder`; every `image` path is relative to it):

    images/train_000000.png ...    training images
    images/heldout_000000.png ...  held-out images (layouts never seen in training)
    pretrain.json                  stage 1 (`plain`): one record per image, caption only
    finetune.json                  stage 2 (`v1`): several Q&A turns per image, some captions,
                                   and a few text-only records (no `image` key)
    heldout.json                   {"candidates": {type: [answers]}, "questions": [...]}
    scenes.json                    the ground-truth spec of every image
    scenes_manifest.json           config + content hash: a rerun with the same config is a no-op

Generation is deterministic: the same config gives byte-identical files on the same numpy and
Pillow versions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import PIL
from tqdm import tqdm

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.quickstart.scenes import (
    CAPTION_QUESTIONS,
    COLOURS,
    QUESTION_TYPES,
    SHAPES,
    SPLITS,
    Scene,
    SceneObject,
    answer_candidates,
    ask,
    caption,
    render_scene,
    sample_scene,
    scene_rng,
)

# Bump when the generator's output changes for an unchanged config, so old folders regenerate.
FORMAT_VERSION = 1
DEFAULT_OUT_DIR = Path("playground/data/scenes")
IMAGES_DIR = "images"
PRETRAIN_FILE = "pretrain.json"
FINETUNE_FILE = "finetune.json"
HELDOUT_FILE = "heldout.json"
SCENES_FILE = "scenes.json"
MANIFEST_FILE = "scenes_manifest.json"
_DATA_ENTRIES = (IMAGES_DIR, PRETRAIN_FILE, FINETUNE_FILE, HELDOUT_FILE, SCENES_FILE)

# One question of every type plus one more about an object: six short-answer turns per image.
_EXTRA_TURN_TYPES = ("colour", "shape", "position")
# One text-only record per this many image conversations (at least one).
_IMAGE_CONVERSATIONS_PER_TEXT_RECORD = 20


@dataclass(frozen=True)
class SceneDataConfig:
    """What to generate. Equal configs give identical folders."""

    num_train: int = 320
    num_heldout: int = 80
    image_size: int = 112
    seed: int = 0
    # Stage-2 conversations per training image, each with its own draw of questions: the same
    # images asked about other objects and attributes, where another epoch would repeat them.
    conversations_per_image: int = 1
    # Share of stage-2 conversations that end with the caption: it keeps captioning alive after
    # finetuning and names every object's colour and shape, in reading order.
    caption_probability: float = 0.3

    def __post_init__(self) -> None:
        if isinstance(self.caption_probability, bool) or not (
            isinstance(self.caption_probability, (int, float)) and 0.0 <= self.caption_probability <= 1.0
        ):
            raise ValueError(
                f"SceneDataConfig.caption_probability must be a number in [0, 1], got {self.caption_probability!r}"
            )
        for name, low, high in (
            ("num_train", 1, 1_000_000),
            ("num_heldout", 1, 1_000_000),
            ("image_size", 32, 2048),
            ("seed", 0, 2**63 - 1),
            ("conversations_per_image", 1, 100),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(
                    f"SceneDataConfig.{name} must be an integer in [{low}, {high}], got {value!r}"
                )


@dataclass(frozen=True)
class HeldoutQuestion:
    question_id: str
    image: str
    question: str
    answer: str
    type: str


@dataclass(frozen=True)
class HeldoutSet:
    """Held-out questions and, per question type, every answer it can have."""

    questions: tuple[HeldoutQuestion, ...]
    candidates: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SceneFiles:
    """A generated (or already up-to-date) scenes folder."""

    out_dir: Path
    generated: bool
    content_sha256: str
    counts: dict[str, int]

    @property
    def image_folder(self) -> Path:
        return self.out_dir

    @property
    def pretrain_json(self) -> Path:
        return self.out_dir / PRETRAIN_FILE

    @property
    def finetune_json(self) -> Path:
        return self.out_dir / FINETUNE_FILE

    @property
    def heldout_json(self) -> Path:
        return self.out_dir / HELDOUT_FILE


def make_scenes(
    out_dir: str | Path = DEFAULT_OUT_DIR, config: SceneDataConfig | None = None, progress: bool = True
) -> SceneFiles:
    """Generate the scenes dataset into `out_dir`, unless it already holds exactly this config.

    A folder is only overwritten if it is empty or holds a scenes manifest (i.e. was written
    here). The files are built in a temporary sibling folder and moved in at the end; the complete
    manifest is written last, so an interrupted run is redone by the next one.
    """
    config = config or SceneDataConfig()
    out_dir = Path(out_dir)
    manifest = _read_manifest(out_dir)
    if manifest is not None and _is_current(out_dir, manifest, config):
        return SceneFiles(out_dir, False, manifest["content_sha256"], manifest["counts"])
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out {out_dir} exists and is not a folder")
    if out_dir.is_dir() and manifest is None and any(out_dir.iterdir()):
        raise FileExistsError(
            f"{out_dir} is not empty and holds no {MANIFEST_FILE}, so it was not written by "
            "make-scenes; refusing to overwrite it. Choose another --out or empty it."
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        counts = _write_dataset(staging, config, progress)
        digest = _content_sha256(staging)
        _write_json(
            staging / MANIFEST_FILE,
            {
                "format_version": FORMAT_VERSION,
                "config": asdict(config),
                "content_sha256": digest,
                "counts": counts,
                # Byte-identity holds for the same versions; recorded to explain a hash change.
                "library_versions": {"numpy": np.__version__, "pillow": PIL.__version__},
            },
        )
        out_dir.mkdir(exist_ok=True)
        # Mark the folder as ours and incomplete before touching it, so that a run interrupted
        # below leaves a folder the next run recognises and regenerates.
        _write_json(out_dir / MANIFEST_FILE, {"format_version": FORMAT_VERSION, "complete": False})
        for name in _DATA_ENTRIES:
            target = out_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            (staging / name).rename(target)
        (staging / MANIFEST_FILE).replace(out_dir / MANIFEST_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SceneFiles(out_dir, True, digest, counts)


def _read_manifest(out_dir: Path) -> dict | None:
    path = out_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}  # ours by name but unreadable: treated as stale and regenerated
    return manifest if isinstance(manifest, dict) else {}


def _is_current(out_dir: Path, manifest: dict, config: SceneDataConfig) -> bool:
    return (
        manifest.get("format_version") == FORMAT_VERSION
        and manifest.get("config") == asdict(config)
        and isinstance(manifest.get("counts"), dict)
        and manifest.get("content_sha256") == _content_sha256(out_dir)
    )


def _content_sha256(folder: Path) -> str:
    """Hash of every generated file's relative path and bytes (the manifest itself excluded)."""
    files = (
        sorted(p for p in (folder / IMAGES_DIR).rglob("*") if p.is_file())
        if (folder / IMAGES_DIR).is_dir()
        else []
    )
    files += [folder / name for name in _DATA_ENTRIES if name != IMAGES_DIR]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"missing")
    return digest.hexdigest()


def _write_dataset(folder: Path, config: SceneDataConfig, progress: bool) -> dict[str, int]:
    (folder / IMAGES_DIR).mkdir()
    pretrain, finetune, heldout_questions, scene_records = [], [], [], []
    bar = tqdm(
        total=config.num_train + config.num_heldout,
        desc="Generating scenes",
        unit="image",
        disable=not progress,
    )
    for split, count in (("train", config.num_train), ("heldout", config.num_heldout)):
        for index in range(count):
            rng = scene_rng(config.seed, split, index)
            scene = sample_scene(rng, split)
            image = f"{IMAGES_DIR}/{split}_{index:06d}.png"
            render_scene(scene, config.image_size).save(folder / image, format="PNG")
            record_id = f"scenes-{split}-{index:06d}"
            scene_records.append({"id": record_id, "split": split, "image": image, "scene": scene.to_dict()})
            if split == "train":
                pretrain.append(_conversation_record(record_id, image, [("", caption(scene))]))
                for conversation in range(config.conversations_per_image):
                    conversation_id = record_id if conversation == 0 else f"{record_id}-{conversation}"
                    turns = _finetune_turns(scene, rng, config.caption_probability)
                    finetune.append(_conversation_record(conversation_id, image, turns))
            else:
                for question_type in QUESTION_TYPES:
                    # Exactly balanced Yes/No over the held-out images: majority baseline = chance.
                    presence_answer = index % 2 == 0 if question_type == "presence" else None
                    question = ask(scene, question_type, rng, presence_answer=presence_answer)
                    heldout_questions.append(
                        HeldoutQuestion(
                            f"heldout-{index:06d}-{question_type}",
                            image,
                            question.question,
                            question.answer,
                            question.type,
                        )
                    )
            bar.update()
    bar.close()
    num_text = max(1, config.num_train * config.conversations_per_image // _IMAGE_CONVERSATIONS_PER_TEXT_RECORD)
    for index in range(num_text):
        # The stream after the image splits' ids, so text records never share a generator with an image.
        rng = np.random.default_rng([config.seed, len(SPLITS), index])
        finetune.append(_conversation_record(f"scenes-text-{index:06d}", None, _text_only_turns(rng)))
    _write_json(folder / PRETRAIN_FILE, pretrain)
    _write_json(folder / FINETUNE_FILE, finetune)
    _write_json(
        folder / HELDOUT_FILE,
        {"candidates": answer_candidates(), "questions": [asdict(q) for q in heldout_questions]},
    )
    _write_json(folder / SCENES_FILE, scene_records)
    return {
        "train_images": config.num_train,
        "heldout_images": config.num_heldout,
        "pretrain_records": len(pretrain),
        "finetune_records": len(finetune),
        "text_only_records": num_text,
        "heldout_questions": len(heldout_questions),
    }


def _finetune_turns(scene: Scene, rng: np.random.Generator, caption_probability: float) -> list[tuple[str, str]]:
    """Six short-answer turns in random order, then sometimes a caption.

    Every turn is supervised, so a turn whose answer an earlier turn already gave away teaches
    copying instead of looking. Questions therefore go to objects not yet talked about while there
    are any, and the caption (which gives everything away) comes last.
    """
    types = list(QUESTION_TYPES) + [_EXTRA_TURN_TYPES[int(rng.integers(len(_EXTRA_TURN_TYPES)))]]
    turns: list[tuple[str, str]] = []
    talked_about: list[SceneObject] = []
    for index in rng.permutation(len(types)).tolist():
        question_type = types[index]
        # A one-object scene has only two wordings per object question; a repeat is redrawn, and
        # in the rare case every redraw repeats, the conversation simply has one turn fewer.
        for _ in range(10):
            fresh = [obj for obj in scene.objects if obj not in talked_about] or list(scene.objects)
            about = fresh[int(rng.integers(len(fresh)))]
            if question_type == "count":
                question = ask(scene, "count", rng)
            elif question_type == "presence":
                present = bool(rng.integers(2))
                question = ask(scene, "presence", rng, about if present else None, presence_answer=present)
            else:
                question = ask(scene, question_type, rng, about)
            if all(question.question != asked for asked, _ in turns):
                turns.append((question.question, question.answer))
                if question.about is not None:
                    talked_about.append(question.about)
                break
    if rng.random() < caption_probability:
        turns.append((CAPTION_QUESTIONS[int(rng.integers(len(CAPTION_QUESTIONS)))], caption(scene)))
    return turns


def _text_only_turns(rng: np.random.Generator) -> list[tuple[str, str]]:
    a, b = (int(v) for v in rng.integers(1, 10, size=2))
    vocabulary = list(COLOURS) + list(SHAPES)
    words = [vocabulary[i] for i in rng.choice(len(vocabulary), size=int(rng.integers(2, 6)), replace=False)]
    turns = [
        (f"What is {a} plus {b}?", str(a + b)),
        (f'How many words are in "{" ".join(words)}"?', str(len(words))),
    ]
    return [turns[i] for i in rng.permutation(len(turns)).tolist()]


def _conversation_record(record_id: str, image: str | None, turns: list[tuple[str, str]]) -> dict:
    """A LLaVA record; `<image>` opens the first human turn iff the record has an image."""
    conversations = []
    for turn_index, (question, answer) in enumerate(turns):
        if turn_index == 0 and image is not None:
            question = f"{IMAGE_TOKEN}\n{question}" if question else IMAGE_TOKEN
        conversations.append({"from": "human", "value": question})
        conversations.append({"from": "gpt", "value": answer})
    record: dict = {"id": record_id}
    if image is not None:
        record["image"] = image
    record["conversations"] = conversations
    return record


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def load_heldout(path: str | Path) -> HeldoutSet:
    """Read and check a `heldout.json`; every problem names the file and the record."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"held-out questions file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise ValueError(f"{path}: expected an object with a 'questions' list and a 'candidates' object")
    raw_candidates = data.get("candidates")
    if not isinstance(raw_candidates, dict) or not all(
        isinstance(v, list) and v and all(isinstance(a, str) for a in v) for v in raw_candidates.values()
    ):
        raise ValueError(f"{path}: 'candidates' must map each question type to a non-empty list of answers")
    candidates = {qtype: tuple(answers) for qtype, answers in raw_candidates.items()}
    questions, seen = [], set()
    keys = tuple(HeldoutQuestion.__dataclass_fields__)
    for index, raw in enumerate(data["questions"]):
        where = f"{path}: questions[{index}]"
        if (
            not isinstance(raw, dict)
            or set(raw) != set(keys)
            or not all(isinstance(raw[k], str) for k in keys)
        ):
            raise ValueError(f"{where} must have exactly the string fields {', '.join(keys)}, got {raw!r}")
        question = HeldoutQuestion(**raw)
        if question.question_id in seen:
            raise ValueError(f"{where}: duplicate question_id {question.question_id!r}")
        seen.add(question.question_id)
        if question.type not in candidates:
            raise ValueError(f"{where}: type {question.type!r} has no entry in 'candidates'")
        if question.answer not in candidates[question.type]:
            raise ValueError(
                f"{where}: answer {question.answer!r} is not among the {question.type} candidates"
            )
        questions.append(question)
    return HeldoutSet(tuple(questions), candidates)
