"""The quick start's held-out check: ask a trained model the held-out scene questions and score them.

Questions are answered in batches with greedy decoding, each with its image, in the conversation
template the model was fine-tuned with. Scoring (per question type, against chance and the
majority answer) is `llava_vitsplit.data.scene_scoring`'s.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from llava_vitsplit.data.conversation import IMAGE_TOKEN, get_template
from llava_vitsplit.data.scene_dataset import HeldoutSet


@torch.inference_mode()
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
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"  # generation continues every row from its last real token
    questions = list(heldout.questions)
    answers: dict[str, str] = {}
    device = next(model.parameters()).device
    batches = range(0, len(questions), batch_size)
    for start in tqdm(batches, desc="Answering held-out questions", unit="batch", disable=not progress):
        batch = questions[start : start + batch_size]
        prompts = [template.prompt_for(f"{IMAGE_TOKEN}\n{q.question}") for q in batch]
        images = []
        for question in batch:
            path = Path(image_folder) / question.image
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        inputs = processor(images=images, text=prompts, padding=True, return_tensors="pt").to(device)
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        for question, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
            answers[question.question_id] = text.strip()
    return answers
