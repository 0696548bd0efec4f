"""LLaVA-format data: conversation templates, tokenisation with label masks, datasets, collator."""
