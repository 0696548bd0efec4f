"""`llava-vitsplit convert` on a tiny synthetic checkpoint of each layout."""

import json

import pytest
import torch

from llava_vitsplit.cli import main
from llava_vitsplit.model import LlavaViTSplitForConditionalGeneration, LlavaViTSplitProcessor
from llava_vitsplit.model.import_llava import import_llava
from llava_vitsplit.model.projector_io import PROJECTOR_CONFIG

from .tiny import random_image, save_tiny_llava_checkpoint


def _logits(folder, image_aspect_ratio=None):
    model = LlavaViTSplitForConditionalGeneration.from_pretrained(folder).eval()
    processor = LlavaViTSplitProcessor.from_pretrained(folder)
    if image_aspect_ratio:
        processor.image_aspect_ratio = image_aspect_ratio
    inputs = processor(text=["USER: <image>\nWhat is it? ASSISTANT:"], images=[random_image()], return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


def test_convert_original_llava(tmp_path, tiny_tower_dirs, capsys):
    source = tmp_path / "llava-v1.5-7b"
    save_tiny_llava_checkpoint(source, tiny_tower_dirs["clip"])
    out = tmp_path / "converted"
    main(["convert", "--from", "llava", "--input", str(source), "--output", str(out),
          "--vision-tower", str(tiny_tower_dirs["clip"]), "--dtype", "float32"])  # fmt: skip
    assert "mlp2x_gelu projector" in capsys.readouterr().out
    model, processor = import_llava(source, vision_tower=tiny_tower_dirs["clip"], dtype=torch.float32)
    inputs = processor(text=["USER: <image>\nWhat is it? ASSISTANT:"], images=[random_image()], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(_logits(out), model(**inputs).logits, rtol=0, atol=0)
    with pytest.raises(SystemExit, match="already holds a model"):
        main(["convert", "--from", "llava", "--input", str(source), "--output", str(out)])


def test_convert_llava_hf(llava_hf_dir, tmp_path):
    out = tmp_path / "converted"
    main(["convert", "--from", "llava-hf", "--input", str(llava_hf_dir), "--output", str(out), "--image-aspect-ratio", "square"])
    assert json.loads((out / "config.json").read_text())["model_type"] == "llava_vitsplit"
    assert LlavaViTSplitProcessor.from_pretrained(out).image_aspect_ratio == "square"
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

    reference = LlavaForConditionalGeneration.from_pretrained(llava_hf_dir).eval()
    inputs = LlavaProcessor.from_pretrained(llava_hf_dir)(
        text=["USER: <image>\nWhat is it? ASSISTANT:"], images=[random_image()], return_tensors="pt"
    )
    with torch.no_grad():
        torch.testing.assert_close(_logits(out), reference(**inputs).logits, rtol=1e-5, atol=1e-5)


def test_convert_a_llava_stage1_projector_file(tmp_path, tiny_llm_dir, tiny_tower_dirs):
    """A bare `mm_projector.bin` as LLaVA saves it: the type is read off its tensor names."""
    width, llm_width = 32, 48
    torch.save(
        {
            "model.mm_projector.0.weight": torch.randn(llm_width, width),
            "model.mm_projector.0.bias": torch.randn(llm_width),
            "model.mm_projector.2.weight": torch.randn(llm_width, llm_width),
            "model.mm_projector.2.bias": torch.randn(llm_width),
        },
        tmp_path / "mm_projector.bin",
    )
    out = tmp_path / "converted"
    main(["convert", "--from", "projector", "--input", str(tmp_path / "mm_projector.bin"), "--output", str(out),
          "--base", str(tiny_llm_dir), "--vision-tower", str(tiny_tower_dirs["clip"])])  # fmt: skip
    model = LlavaViTSplitForConditionalGeneration.from_pretrained(out)
    assert model.config.projector_type == "mlp2x_gelu"
    saved = torch.load(tmp_path / "mm_projector.bin", weights_only=True)
    torch.testing.assert_close(model.model.multi_modal_projector.linear_1.weight, saved["model.mm_projector.0.weight"])


def test_convert_the_vitsplit_authors_projector_with_its_run_config(tmp_path, tiny_llm_dir, tiny_tower_dirs):
    """The authors' stage-1 folder: `mm_projector.bin` + LLaVA's config.json with their ViT-Split fields."""
    source, _ = LlavaViTSplitForConditionalGeneration.from_parts(
        tiny_llm_dir, tiny_tower_dirs["clip"], projector_type="vitsplit", vitsplit_preset="llava-official"
    )
    renames = {"heads.task_head.": "tuned_head.", "heads.prior_head.": "frozen_conv.", "heads.fusion.": "fusion_conv."}
    authors = {}
    for key, value in source.model.multi_modal_projector.state_dict().items():
        for ours, theirs in renames.items():
            key = key.replace(ours, theirs)
        authors["model.mm_projector." + key] = value + 0.01  # differs from a fresh copy of the tower block
    run = tmp_path / "stage1"
    run.mkdir()
    torch.save(authors, run / "mm_projector.bin")
    (run / "config.json").write_text(json.dumps({
        "model_type": "llava_llama", "mm_projector_type": "vitsplit", "mm_tuned_layers_num": 1,
        "mm_frozen_select_layer": [-2], "mm_vision_tower": "openai/clip-vit-large-patch14-336", "mm_hidden_size": 32,
    }))  # fmt: skip
    out = tmp_path / "converted"
    main(["convert", "--from", "projector", "--input", str(run), "--output", str(out),
          "--base", str(tiny_llm_dir), "--vision-tower", str(tiny_tower_dirs["clip"])])  # fmt: skip
    model = LlavaViTSplitForConditionalGeneration.from_pretrained(out)
    assert (model.config.projector_type, model.config.vitsplit_variant) == ("vitsplit", "official")
    torch.testing.assert_close(
        model.model.multi_modal_projector.heads.task_head[0].mlp.fc1.weight, authors["model.mm_projector.tuned_head.0.mlp.fc1.weight"]
    )
    assert not (out / PROJECTOR_CONFIG).exists()  # a full model folder, not a projector folder


def test_projector_without_base_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="needs --base"):
        main(["convert", "--from", "projector", "--input", str(tmp_path), "--output", str(tmp_path / "o")])
