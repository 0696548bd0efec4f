"""Benchmark evaluation: answer files, scoring (POPE, VQAv2, MMBench), local benchmark data, and
running a model over benchmarks (`inference`, `model_vqa`, the lmms-eval model `lmms_model`)."""
