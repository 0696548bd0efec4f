"""Synthetic scenes for the CPU quick start: a spec, a seeded sampler, a renderer, and the language.

A scene is 1-4 flat objects on a plain or lightly textured neutral background. Every object has a
shape, a colour and one of five positions (top, left, center, right, bottom). Within a scene,
shapes are distinct and colours are distinct, so "the circle" or "the red object" always names
exactly one object and every question has exactly one right answer.

The sizes are chosen for a frozen DINOv2 at 14 px patches and 112 px input (8x8 patches): each
object spans about 25-30 px, i.e. about 2x2 patches, and the colours are saturated hues far apart
from each other and from the low-saturation background.

Everything is a pure function of `(seed, split, index)`: each image draws from its own
`numpy.random.Generator`, so the i-th scene does not depend on how many others are generated, and
`render_scene` is a pure function of the spec (its texture noise comes from a seed stored in it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    # Saturated hues spread around the colour wheel (about 0, 52, 130, 185, 225, 280 degrees).
    "red": (222, 30, 30),
    "yellow": (245, 212, 25),
    "green": (30, 170, 50),
    "cyan": (20, 205, 225),
    "blue": (35, 70, 230),
    "purple": (150, 45, 205),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "star")
# Object centres as fractions of the image side; listed in reading order (captions use this order).
POSITIONS: dict[str, tuple[float, float]] = {
    "top": (0.5, 0.2),
    "left": (0.2, 0.5),
    "center": (0.5, 0.5),
    "right": (0.8, 0.5),
    "bottom": (0.5, 0.8),
}
TEXTURES: tuple[str, ...] = ("plain", "noise", "gradient")
MAX_OBJECTS = 4
SPLITS: tuple[str, ...] = ("train", "heldout")
QUESTION_TYPES: tuple[str, ...] = ("colour", "count", "presence", "position", "shape")

# Object size (width) as a fraction of the image side, and how far a centre may move from its slot.
# Slots are 0.3 apart, so neighbours stay >= 0.27 apart: more than two of the widest objects'
# half-extents (0.53 * 0.26 for a star's spike, 0.5 * 0.26 otherwise).
_SIZE_RANGE = (0.22, 0.26)
_JITTER = 0.015
# One layout (the set of position/colour/shape triples) in five is reserved for held-out images,
# so a held-out image never repeats a training layout, whatever the number of images.
_HELDOUT_LAYOUT_MODULUS = 5
_SUPERSAMPLE = 4  # objects are drawn at 4x and box-filtered down, for anti-aliased edges

_POSITION_PHRASES = {
    "top": "at the top",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom": "at the bottom",
}
_COUNT_QUESTIONS = ("How many objects are there?", "How many shapes are in the image?")
_COLOUR_QUESTIONS = ("What colour is the {shape}?", "What is the colour of the {shape}?")
_SHAPE_QUESTIONS = ("What shape is the {colour} object?", "Which shape is {colour}?")
# Named by one attribute only, so a position question does not reveal which colour goes with which
# shape (a later turn of the same conversation could otherwise be answered from the text).
_POSITION_QUESTIONS = ("Where is the {shape}?", "Where is the {colour} object?")
CAPTION_QUESTIONS: tuple[str, ...] = ("Describe the image briefly.", "What is in the image?")


@dataclass(frozen=True)
class SceneObject:
    """One flat object; `x`, `y` (centre) and `size` are fractions of the image side."""

    shape: str
    colour: str
    position: str
    x: float
    y: float
    size: float

    def __post_init__(self) -> None:
        _check_member("shape", self.shape, SHAPES)
        _check_member("colour", self.colour, tuple(COLOURS))
        _check_member("position", self.position, tuple(POSITIONS))
        for name in ("x", "y", "size"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
                raise ValueError(f"SceneObject.{name} must be a number in (0, 1), got {value!r}")

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Background:
    """A neutral base colour and a light texture; `texture_seed` makes rendering a pure function."""

    rgb: tuple[int, int, int]
    texture: str
    texture_seed: int

    def __post_init__(self) -> None:
        _check_member("texture", self.texture, TEXTURES)
        if len(self.rgb) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in self.rgb):
            raise ValueError(f"Background.rgb must be three integers in [0, 255], got {self.rgb!r}")
        if not isinstance(self.texture_seed, int) or self.texture_seed < 0:
            raise ValueError(f"Background.texture_seed must be a non-negative int, got {self.texture_seed!r}")


@dataclass(frozen=True)
class Scene:
    """A background and 1-4 objects with distinct shapes, colours and positions, in reading order."""

    background: Background
    objects: tuple[SceneObject, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= MAX_OBJECTS:
            raise ValueError(f"a scene holds 1 to {MAX_OBJECTS} objects, got {len(self.objects)}")
        for attribute in ("shape", "colour", "position"):
            values = [getattr(obj, attribute) for obj in self.objects]
            if len(set(values)) != len(values):
                raise ValueError(f"scene objects must have distinct {attribute}s, got {values}")
        order = [_POSITION_ORDER[obj.position] for obj in self.objects]
        if order != sorted(order):
            raise ValueError(
                "scene objects must be listed in reading order (top, left, center, right, bottom)"
            )

    def layout_key(self) -> str:
        """What the scene shows, without jitter or background: the unit of the train/held-out split."""
        return ";".join(f"{obj.position}:{obj.colour}:{obj.shape}" for obj in self.objects)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Scene:
        background = data["background"]
        return cls(
            background=Background(
                rgb=tuple(background["rgb"]),
                texture=background["texture"],
                texture_seed=background["texture_seed"],
            ),
            objects=tuple(SceneObject(**obj) for obj in data["objects"]),
        )


@dataclass(frozen=True)
class SceneQuestion:
    type: str
    question: str
    answer: str
    about: SceneObject | None  # the object whose attributes the question reveals, if any


def _check_member(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {field} {value!r}; expected one of {', '.join(allowed)}")


_POSITION_ORDER = {name: i for i, name in enumerate(POSITIONS)}


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator that owns image `index` of `split`: independent of every other image."""
    _check_member("split", split, SPLITS)
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    return np.random.default_rng([seed, SPLITS.index(split), index])


def is_heldout_layout(scene: Scene) -> bool:
    digest = hashlib.sha256(scene.layout_key().encode()).digest()
    return int.from_bytes(digest[:8], "big") % _HELDOUT_LAYOUT_MODULUS == 0


def sample_scene(rng: np.random.Generator, split: str) -> Scene:
    """Draw a scene whose layout falls on `split`'s side of the partition (4/5 train, 1/5 held-out)."""
    _check_member("split", split, SPLITS)
    want_heldout = split == "heldout"
    # The object count is drawn once, so both splits keep a uniform count distribution. For every
    # count about 1/5 of the layouts are held out, so 1000 failed redraws do not happen by chance.
    count = int(rng.integers(1, MAX_OBJECTS + 1))
    for _ in range(1000):
        scene = _draw_scene(rng, count)
        if is_heldout_layout(scene) == want_heldout:
            return scene
    raise RuntimeError(f"could not draw a {split} scene in 1000 tries; the layout partition is broken")


def _draw_scene(rng: np.random.Generator, count: int) -> Scene:
    position_names = list(POSITIONS)
    positions = sorted(rng.choice(len(position_names), size=count, replace=False).tolist())
    shapes = rng.choice(len(SHAPES), size=count, replace=False).tolist()
    colour_names = list(COLOURS)
    colours = rng.choice(len(colour_names), size=count, replace=False).tolist()
    objects = []
    for position_index, shape_index, colour_index in zip(positions, shapes, colours, strict=True):
        position = position_names[position_index]
        slot_x, slot_y = POSITIONS[position]
        jitter_x, jitter_y = rng.uniform(-_JITTER, _JITTER, size=2)
        objects.append(
            SceneObject(
                shape=SHAPES[shape_index],
                colour=colour_names[colour_index],
                position=position,
                x=round(float(slot_x + jitter_x), 4),
                y=round(float(slot_y + jitter_y), 4),
                size=round(float(rng.uniform(*_SIZE_RANGE)), 4),
            )
        )
    # Neutral, low-saturation backgrounds: a grey level with a small tint.
    grey = rng.uniform(85, 165)
    tint = rng.uniform(-10, 10, size=3)
    rgb = tuple(int(round(grey + t)) for t in tint)
    background = Background(
        rgb=rgb,
        texture=TEXTURES[int(rng.integers(len(TEXTURES)))],
        texture_seed=int(rng.integers(2**31)),
    )
    return Scene(background=background, objects=tuple(objects))


def render_scene(scene: Scene, image_size: int) -> Image.Image:
    """Draw `scene` as an RGB image of `image_size` x `image_size` pixels."""
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
    background = _render_background(scene.background, image_size)
    # Nearest-upsampling then box-filtering returns the background pixels unchanged; only the
    # object edges get blended.
    big_side = image_size * _SUPERSAMPLE
    canvas = background.resize((big_side, big_side), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(canvas)
    for obj in scene.objects:
        _draw_object(draw, obj, big_side)
    return canvas.resize((image_size, image_size), Image.Resampling.BOX)


def _render_background(background: Background, image_size: int) -> Image.Image:
    rng = np.random.default_rng(background.texture_seed)
    pixels = np.empty((image_size, image_size, 3), dtype=np.float64)
    pixels[:] = background.rgb
    if background.texture == "noise":
        # Grey (luminance-only) noise keeps the background unsaturated.
        pixels += rng.normal(0.0, 6.0, size=(image_size, image_size, 1))
    elif background.texture == "gradient":
        angle = rng.uniform(0.0, 2.0 * math.pi)
        coords = (np.arange(image_size) + 0.5) / image_size * 2.0 - 1.0
        ramp = math.cos(angle) * coords[None, :] + math.sin(angle) * coords[:, None]
        pixels += (18.0 / math.sqrt(2.0)) * ramp[:, :, None]
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, side: int) -> None:
    cx, cy, size = obj.x * side, obj.y * side, obj.size * side
    fill = COLOURS[obj.colour]
    half = size / 2.0
    if obj.shape == "circle":
        draw.ellipse((cx - half, cy - half, cx + half, cy + half), fill=fill)
    elif obj.shape == "square":
        # A square looks larger than a circle of the same width; shrink it towards equal area.
        h = 0.44 * size
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif obj.shape == "triangle":
        h = 0.45 * size
        draw.polygon([(cx, cy - h), (cx + half, cy + h), (cx - half, cy + h)], fill=fill)
    elif obj.shape == "cross":
        arm = size / 6.0
        draw.rectangle((cx - half, cy - arm, cx + half, cy + arm), fill=fill)
        draw.rectangle((cx - arm, cy - half, cx + arm, cy + half), fill=fill)
    elif obj.shape == "star":
        # Spikes make a star look smaller than a circle of the same width; draw it a little wider.
        outer = 0.53 * size
        points = []
        for k in range(10):
            radius = outer if k % 2 == 0 else 0.45 * outer
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        draw.polygon(points, fill=fill)
    else:  # SceneObject validates shapes; a new shape must get a drawing here.
        raise ValueError(f"no drawing for shape {obj.shape!r}")


def caption(scene: Scene) -> str:
    """One sentence naming every object with its colour and position, in reading order."""
    parts = [f"{_article(obj.colour)} {obj.name} {_POSITION_PHRASES[obj.position]}" for obj in scene.objects]
    if len(parts) == 1:
        text = parts[0]
    else:
        text = ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:] + "."


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def ask(
    scene: Scene,
    question_type: str,
    rng: np.random.Generator,
    about: SceneObject | None = None,
    presence_answer: bool | None = None,
) -> SceneQuestion:
    """One question of `question_type` about `scene`, with its short answer.

    `about` picks the object a colour, shape, position or Yes-presence question is about (None: a
    random one). For "presence", `presence_answer` forces a Yes or a No question (None: either,
    evenly; Yes when `about` is given).
    """
    _check_member("question type", question_type, QUESTION_TYPES)
    if about is not None and about not in scene.objects:
        raise ValueError(f"the {about.name} is not in the scene ({scene.layout_key()})")
    if question_type == "count":
        if about is not None:
            raise ValueError("a count question is about the whole scene, not one object")
        return SceneQuestion("count", _pick(rng, _COUNT_QUESTIONS), str(len(scene.objects)), None)
    if question_type == "presence":
        if presence_answer is None:
            presence_answer = about is not None or bool(rng.integers(2))
        if about is not None and not presence_answer:
            raise ValueError(f"a No presence question cannot be about the {about.name}, which is present")
        if presence_answer:
            return _ask_present(about or _pick(rng, scene.objects), rng)
        return _ask_absent(scene, rng)
    obj = about or _pick(rng, scene.objects)
    if question_type == "colour":
        template, answer = _pick(rng, _COLOUR_QUESTIONS), obj.colour
    elif question_type == "shape":
        template, answer = _pick(rng, _SHAPE_QUESTIONS), obj.shape
    else:
        template, answer = _pick(rng, _POSITION_QUESTIONS), obj.position
    question = template.format(shape=obj.shape, colour=obj.colour)
    return SceneQuestion(question_type, question, answer.capitalize(), obj)


_PRESENCE_FORMS = ("colour shape", "shape", "colour")


def _presence_question(form: str, colour: str | None, shape: str | None) -> str:
    if form == "colour shape":
        return f"Is there {_article(colour)} {colour} {shape}?"
    if form == "shape":
        return f"Is there {_article(shape)} {shape}?"
    return f"Is there {_article(colour)} {colour} object?"


def _ask_present(obj: SceneObject, rng: np.random.Generator) -> SceneQuestion:
    question = _presence_question(_pick(rng, _PRESENCE_FORMS), obj.colour, obj.shape)
    return SceneQuestion("presence", question, "Yes", obj)


def _ask_absent(scene: Scene, rng: np.random.Generator) -> SceneQuestion:
    present_shapes = [obj.shape for obj in scene.objects]
    present_colours = [obj.colour for obj in scene.objects]
    form = _pick(rng, _PRESENCE_FORMS)
    if form == "shape":
        shape, colour = _pick(rng, [s for s in SHAPES if s not in present_shapes]), None
    elif form == "colour":
        shape, colour = None, _pick(rng, [c for c in COLOURS if c not in present_colours])
    else:
        present_pairs = {(obj.colour, obj.shape) for obj in scene.objects}
        if len(scene.objects) >= 2 and rng.integers(2):
            # A hard negative: both the colour and the shape are in the image, on different objects.
            pairs = [(c, s) for c in present_colours for s in present_shapes if (c, s) not in present_pairs]
        else:
            pairs = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present_pairs]
        colour, shape = _pick(rng, pairs)
    return SceneQuestion("presence", _presence_question(form, colour, shape), "No", None)


def answer_candidates() -> dict[str, list[str]]:
    """Every answer a question of each type can have: the denominators of chance level."""
    return {
        "colour": [c.capitalize() for c in COLOURS],
        "count": [str(n) for n in range(1, MAX_OBJECTS + 1)],
        "presence": ["Yes", "No"],
        "position": [p.capitalize() for p in POSITIONS],
        "shape": [s.capitalize() for s in SHAPES],
    }
