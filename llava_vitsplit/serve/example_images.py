"""Real photos for the demo's examples, taken from scikit-image (installed, so they work offline)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

DEFAULT_FOLDER = Path(tempfile.gettempdir()) / "llava_vitsplit_demo_examples"


@dataclass(frozen=True)
class ExamplePhoto:
    loader: str  # function name in skimage.data
    file_name: str
    question: str


EXAMPLE_PHOTOS = (
    ExamplePhoto("chelsea", "chelsea_the_cat.jpg", "What animal is this, and what colour is its fur?"),
    ExamplePhoto("astronaut", "astronaut.jpg", "What is the person in this photo wearing?"),
    ExamplePhoto("coffee", "coffee.jpg", "Describe this picture."),
    ExamplePhoto("rocket", "rocket.jpg", "What is happening in this photo?"),
)


def write_example_photos(folder: str | Path = DEFAULT_FOLDER) -> list[tuple[Path, str]]:
    """Save the example photos as JPEG files in `folder` (once) and return (path, question) pairs."""
    from skimage import data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    examples = []
    for photo in EXAMPLE_PHOTOS:
        path = folder / photo.file_name
        if not path.is_file():
            partial = path.with_suffix(".partial")  # never leave a half-written file under the real name
            Image.fromarray(getattr(data, photo.loader)()).convert("RGB").save(partial, format="JPEG", quality=92)
            partial.replace(path)
        examples.append((path, photo.question))
    return examples
