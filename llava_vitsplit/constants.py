"""Facts the data, model, serving and evaluation code share (LLaVA keeps them in ``llava/constants.py``)."""

IMAGE_TOKEN = "<image>"
"""The placeholder a prompt carries for each image: a special token of the tokenizer, expanded by the
processor into the model's image tokens."""
