"""The quick start's held-out check: a trained model answers the held-out scene questions.

Each question is asked with its image, in the conversation template the model was fine-tuned
with, and answered greedily in batches (`llava_vitsplit.model.inference`). Scoring (per question
type, against chance and the majority answer) is `llava_vitsplit.quickstart.scene_scoring`'s.
"""

from __future__ import annotations

from pathlib import Path

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.data.conversation import get_template
from llava_vitsplit.model.inference import generate_answers
from llava_vitsplit.quickstart.scene_dataset import HeldoutSet


def answer_questions(
    model,
    processor,
    heldout: HeldoutSet,
    image_folder: str | Path,
    *,
    version: str = "v1",
    batch_size: int = 16,
    max_new_tokens: int = 16,
    progress: bool = True,
) -> dict[str, str]:
    """`{question_id: generated answer}` for every held-out question."""
    template = get_template(version)
    requests = [
        (Path(image_folder) / q.image, template.prompt_for(f"{IMAGE_TOKEN}\n{q.question}")) for q in heldout.questions
    ]
    answers = generate_answers(
        model, processor, requests, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress
    )
    return {q.question_id: answer for q, answer in zip(heldout.questions, answers)}
