"""LLaVA's two training stages: arguments, trainer, checkpoints; `python -m llava_vitsplit.train`."""
