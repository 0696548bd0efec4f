"""Benchmark evaluation that needs no model: answer files, scoring (POPE, VQAv2, MMBench), local data."""
