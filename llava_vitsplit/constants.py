"""Facts the data, model, training, serving and evaluation code share (LLaVA keeps its own in
``llava/constants.py``). Plain values only, so command-line parsers can import them at no cost."""

IMAGE_TOKEN = "<image>"
"""The placeholder a prompt carries for each image: a special token of the tokenizer, expanded by the
processor into the model's image tokens."""

PROJECTOR_TYPES = ("vitsplit", "mlp2x_gelu", "linear")
"""The multimodal projectors (``projector_type``; LLaVA's ``mm_projector_type`` names the last two alike)."""

PROJECTOR_MODULE = "multi_modal_projector"
"""The projector's module name in the model (transformers' Llava layout: ``model.multi_modal_projector``)."""
