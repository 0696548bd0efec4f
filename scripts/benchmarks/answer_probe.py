"""Does a stage-2 model carry the asked attribute to the position where it answers?

For every object of the generated scenes (`llava-vitsplit make-scenes`) the model is asked one
colour question ("What colour is the circle?") and one shape question ("What shape is the red
object?"), worded as in training, and the LLM's hidden state at the last prompt token (where the
answer's first token is predicted) is read at a few depths. A linear classifier for the object's
colour (shape) is fitted on the training images' questions and scored on the held-out images'.
Next to it: how often the model's own most likely first answer token, among the candidates, is
right.

`projector_probe.py` asks whether the projector's tokens carry an attribute; this asks whether the
LLM brings it from those tokens to the answer. Near chance at every depth means that the answer
position never receives it: the model answers from the question alone.

    python scripts/benchmarks/answer_probe.py playground/checkpoints/quickstart-finetune
"""

from __future__ import annotations

import argparse
import json
import runpy
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from llava_vitsplit.constants import IMAGE_TOKEN
from llava_vitsplit.data.conversation import get_template
from llava_vitsplit.model.builder import load_model
from llava_vitsplit.quickstart.scene_dataset import SCENES_FILE
from llava_vitsplit.quickstart.scenes import Scene, answer_candidates, ask

probe_accuracy = runpy.run_path(str(Path(__file__).with_name("projector_probe.py")))["probe_accuracy"]
ATTRIBUTES = ("colour", "shape")


def attribute_questions(scene_records: list[dict], attribute: str, seed: int = 0) -> list[dict]:
    """One question about `attribute` per object: `{split, image, question, answer}`, in scene order."""
    rng = np.random.default_rng(seed)
    questions = []
    for record in scene_records:
        scene = Scene.from_dict(record["scene"])
        for obj in scene.objects:
            asked = ask(scene, attribute, rng, about=obj)
            questions.append(
                {"split": record["split"], "image": record["image"], "question": asked.question, "answer": asked.answer}
            )
    return questions


def answer_states(model, processor, requests, layers: list[int], candidate_ids: list[int], batch_size: int = 16):
    """Hidden states at the last prompt token, `{layer: (N, width)}`, and the index of the most
    likely of `candidate_ids` as the next token, `(N,)`; `requests` are `(image, prompt)` pairs."""
    states, choices = {layer: [] for layer in layers}, []
    with torch.inference_mode():
        for start in tqdm(range(0, len(requests), batch_size), desc="questions", unit="batch", leave=False):
            chunk = requests[start : start + batch_size]
            inputs = processor(
                text=[prompt for _, prompt in chunk],
                images=[image for image, _ in chunk],
                padding=True,
                padding_side="left",
                return_tensors="pt",
            )
            output = model(**inputs, output_hidden_states=True)
            for layer in layers:
                states[layer].append(output.hidden_states[layer][:, -1].float())
            choices.append(output.logits[:, -1, candidate_ids].argmax(-1))
    return {layer: torch.cat(parts) for layer, parts in states.items()}, torch.cat(choices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="stage-2 output folders")
    parser.add_argument("--data", default="playground/data/scenes", help="the scenes folder")
    parser.add_argument("--version", default="v1", help="the conversation template the model was tuned with")
    args = parser.parse_args()
    data = Path(args.data)
    scenes = json.loads((data / SCENES_FILE).read_text())
    images = {s["image"]: Image.open(data / s["image"]).convert("RGB") for s in scenes}
    template = get_template(args.version)
    candidates = answer_candidates()

    rows = []
    for checkpoint in tqdm(args.checkpoints, desc="checkpoints"):
        model, processor = load_model(checkpoint, device="cpu", torch_dtype=torch.float32)
        model.eval()
        num_layers = model.config.text_config.num_hidden_layers
        layers = sorted({0, num_layers // 3, 2 * num_layers // 3, num_layers})
        for attribute in ATTRIBUTES:
            questions = attribute_questions(scenes, attribute)
            answers = candidates[attribute]
            # The first token of each answer after "ASSISTANT:", as the template writes it.
            candidate_ids = [processor.tokenizer(f" {a}", add_special_tokens=False).input_ids[0] for a in answers]
            if len(set(candidate_ids)) != len(answers):
                raise ValueError(f"{attribute} answers {answers} share a first token; the model's choice is ambiguous")
            requests = [(images[q["image"]], template.prompt_for(f"{IMAGE_TOKEN}\n{q['question']}")) for q in questions]
            states, choices = answer_states(model, processor, requests, layers, candidate_ids)
            labels = torch.tensor([answers.index(q["answer"]) for q in questions])
            train = torch.tensor([q["split"] == "train" for q in questions])
            heldout = ~train
            probes = {
                layer: probe_accuracy(x[train], labels[train], x[heldout], labels[heldout], len(answers))
                for layer, x in states.items()
            }
            own = (choices[heldout] == labels[heldout]).float().mean().item()
            rows.append((checkpoint, attribute, len(answers), probes, own))

    print("held-out questions: linear probe on the answer position's hidden state, by LLM layer; the model's own choice")
    for checkpoint, attribute, num_answers, probes, own in rows:
        cells = "  ".join(f"layer {layer}: {accuracy:6.1%}" for layer, accuracy in probes.items())
        print(f"{checkpoint[-50:]:<50} {attribute:<7} (chance {1 / num_answers:.1%})  {cells}  model: {own:6.1%}")


if __name__ == "__main__":
    main()
