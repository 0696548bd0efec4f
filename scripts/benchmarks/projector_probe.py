"""How much of the scene a projector's output tokens still carry: linear probes on the sample scenes.

For every object of the generated scenes (`llava-vitsplit make-scenes`), the token at the
object's centre patch is read off (a) the frozen tower's hidden state that LLaVA's projectors
read (`hs[-2]`) and (b) each checkpoint's projector output. A linear classifier for the object's
colour and shape is fitted on the training images' objects and scored on the held-out images'.
A projector whose probe accuracy falls far below the tower's has thrown information away that
the LLM can then never read (seen with the official ViT-Split projector at a stage-1 rate of 1e-3).

A probe fitted on thousands of objects finds colour even when it is a small part of a token, so two
cosines say how distinct the tokens are as the LLM's attention meets them (its RMSNorm keeps only
their direction): object against background (an object-centre token against the image's tokens
with no object on them) and object against object (the centre tokens of two objects of one image).
Near 1, objects look like the background and like one another, and attention cannot pick them out.

For the same reason (a probe on standardised features finds a class in any direction, however
faint), it prints the share of the object tokens' variance that colour and shape explain (the
spread of the class means over the spread of the tokens, on all images): how much of what the LLM
meets at an object changes with its colour or its shape.

    python scripts/benchmarks/projector_probe.py playground/checkpoints/quickstart-pretrain \\
        playground/checkpoints/quickstart-finetune

Stage-1 folders (projector only) are opened over the demo LLM, or over `--model-base`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from llava_vitsplit.model.builder import load_model
from llava_vitsplit.model.projector_io import PROJECTOR_WEIGHTS
from llava_vitsplit.quickstart.scene_dataset import SCENES_FILE
from llava_vitsplit.quickstart.weights import fetch_quickstart_weights
from llava_vitsplit.split import frozen_hidden_states

ATTRIBUTES = ("colour", "shape")


def centre_patch(obj: dict, rows: int, cols: int) -> tuple[int, int]:
    """`(row, col)` of the patch under an object's centre on a `rows` x `cols` grid."""
    return min(int(obj["y"] * rows), rows - 1), min(int(obj["x"] * cols), cols - 1)


def object_tokens(token_maps: torch.Tensor, scenes: list[dict]) -> torch.Tensor:
    """`(num_objects, C)`: the token under each object's centre, from `(num_images, h, w, C)` maps."""
    rows, cols = token_maps.shape[1:3]
    picked = []
    for image_tokens, scene in zip(token_maps, scenes):
        for obj in scene["scene"]["objects"]:
            picked.append(image_tokens[centre_patch(obj, rows, cols)])
    return torch.stack(picked)


def token_cosines(token_maps: torch.Tensor, scenes: list[dict]) -> tuple[float, float]:
    """Mean cosine of object-centre tokens against the image's background tokens (no object within
    half an object width of the patch centre), and against the image's other objects' centre tokens."""
    rows, cols = token_maps.shape[1:3]
    centre_y = (torch.arange(rows) + 0.5) / rows
    centre_x = (torch.arange(cols) + 0.5) / cols
    against_background, against_objects = [], []
    for image_tokens, scene in zip(token_maps, scenes):
        tokens = torch.nn.functional.normalize(image_tokens.flatten(0, 1), dim=-1)
        covered = torch.zeros(rows, cols, dtype=torch.bool)
        centres = []
        for obj in scene["scene"]["objects"]:
            half = obj["size"] / 2
            covered |= ((centre_y[:, None] - obj["y"]).abs() < half) & ((centre_x[None, :] - obj["x"]).abs() < half)
            row, col = centre_patch(obj, rows, cols)
            centres.append(row * cols + col)
        objects, background = tokens[centres], tokens[~covered.flatten()]
        against_background.append((objects @ background.T).mean())
        if len(centres) > 1:
            similarity = objects @ objects.T
            against_objects.append(similarity[~torch.eye(len(centres), dtype=torch.bool)].mean())
    return torch.stack(against_background).mean().item(), torch.stack(against_objects).mean().item()


def variance_share(tokens: torch.Tensor, labels: torch.Tensor) -> float:
    """Between-class sum of squares over the total one, for `(N, C)` tokens and `(N,)` class labels:
    1 when every token is its class's mean, 0 when every class has the same mean."""
    centred = tokens - tokens.mean(0)
    between = sum(
        (labels == label).sum() * centred[labels == label].mean(0).square().sum() for label in labels.unique()
    )
    return (between / centred.square().sum()).item()


def probe_accuracy(train_x, train_y, test_x, test_y, num_classes: int) -> float:
    """Held-out accuracy of a multinomial logistic regression (L-BFGS, light L2) on standardised features."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    classifier = torch.nn.Linear(train_x.shape[1], num_classes)
    optimizer = torch.optim.LBFGS(classifier.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(classifier(train_x), train_y) + 1e-3 * classifier.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return (classifier(test_x).argmax(1) == test_y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="stage-1 or stage-2 output folders")
    parser.add_argument("--data", default="playground/data/scenes", help="the scenes folder")
    parser.add_argument("--model-base", help="LLM folder for stage-1 checkpoints (default: the demo LLM)")
    args = parser.parse_args()
    data = Path(args.data)
    scenes = json.loads((data / SCENES_FILE).read_text())
    images = [Image.open(data / scene["image"]).convert("RGB") for scene in scenes]
    splits = {name: [i for i, s in enumerate(scenes) if s["split"] == name] for name in ("train", "heldout")}
    labels, num_classes = {}, {}
    for attribute in ATTRIBUTES:
        values = sorted({obj[attribute] for s in scenes for obj in s["scene"]["objects"]})
        num_classes[attribute] = len(values)
        labels[attribute] = {
            split: torch.tensor([values.index(o[attribute]) for i in idx for o in scenes[i]["scene"]["objects"]])
            for split, idx in splits.items()
        }

    rows = []
    for checkpoint in tqdm(args.checkpoints, desc="checkpoints"):
        base = None
        if (Path(checkpoint) / PROJECTOR_WEIGHTS).exists():
            base = args.model_base or str(fetch_quickstart_weights().smollm2_135m)
        model, processor = load_model(checkpoint, base, device="cpu", torch_dtype=torch.float32)
        model.eval()
        pixels = torch.stack([processor.process_images([image])[0] for image in images])
        adapter = model.model.vision_adapter
        grid = adapter.grid_size(*pixels.shape[-2:])
        with torch.no_grad():
            projected = torch.cat(
                [torch.stack(model.model.get_image_features(chunk).pooler_output) for chunk in pixels.split(50)]
            )
            maps = {f"{checkpoint} (projector)": projected.reshape(len(images), *grid, -1)}
            if not rows:  # the tower is frozen: its features are the same in every checkpoint
                layer = adapter.num_layers - 1
                tower = torch.cat(
                    [frozen_hidden_states(adapter, chunk, [layer])[layer] for chunk in pixels.split(50)]
                )
                maps = {"frozen tower hs[-2]": adapter.tokens_to_map(tower, grid).permute(0, 2, 3, 1), **maps}
        for source, token_maps in maps.items():
            tokens = {split: object_tokens(token_maps[idx], [scenes[i] for i in idx]) for split, idx in splits.items()}
            scores = {
                attribute: probe_accuracy(
                    tokens["train"], labels[attribute]["train"], tokens["heldout"], labels[attribute]["heldout"],
                    num_classes[attribute],
                )
                for attribute in ATTRIBUTES
            }
            every_token = torch.cat([tokens["train"], tokens["heldout"]])
            shares = {
                attribute: variance_share(
                    every_token, torch.cat([labels[attribute]["train"], labels[attribute]["heldout"]])
                )
                for attribute in ATTRIBUTES
            }
            norms = token_maps.flatten(0, 2).norm(dim=-1)
            heldout = [scenes[i] for i in splits["heldout"]]
            cosines = token_cosines(token_maps[splits["heldout"]], heldout)
            rows.append((source, scores, shares, norms.mean().item(), *cosines))

    print("linear probes on held-out objects (chance: colour 1/6, shape 1/5); the share of the object tokens'")
    print("variance that colour and shape explain (all objects); cosines on held-out images")
    print(f"{'features':<60}{'colour':>8}{'shape':>8}{'colour var':>12}{'shape var':>11}{'token norm':>12}"
          f"{'cos obj/bg':>12}{'cos obj/obj':>12}")
    for source, scores, shares, norm, background, objects in rows:
        print(f"{source[-60:]:<60}{scores['colour']:>8.1%}{scores['shape']:>8.1%}{shares['colour']:>12.3f}"
              f"{shares['shape']:>11.3f}{norm:>12.1f}{background:>12.2f}{objects:>12.2f}")


if __name__ == "__main__":
    main()
