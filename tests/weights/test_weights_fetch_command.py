import argparse

import pytest

from llava_vitsplit.commands import fetch_demo_weights as command
from llava_vitsplit.weights import DemoWeights, cache_root, fetch_demo_weights


def _parse(argv):
    parser = argparse.ArgumentParser(prog="llava-vitsplit")
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_command_arguments():
    args = _parse(["fetch-demo-weights", "--only", "vicuna-tokenizer", "--cache-dir", "/some/dir"])
    assert (args.only, args.cache_dir, args.func) == ("vicuna-tokenizer", "/some/dir", command.run)
    assert _parse(["fetch-demo-weights"]).only is None
    with pytest.raises(SystemExit):
        _parse(["fetch-demo-weights", "--only", "clip"])


def test_command_prints_the_converted_folder(vicuna_tokenizer_dir, capsys):
    assert (
        command.run(
            _parse(["fetch-demo-weights", "--only", "vicuna-tokenizer", "--cache-dir", str(cache_root())])
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == f"vicuna-tokenizer: {vicuna_tokenizer_dir}"


def test_fetch_demo_weights_returns_all_folders(dinov2_dir, smollm2_dir, vicuna_tokenizer_dir):
    assert fetch_demo_weights() == DemoWeights(dinov2_dir, smollm2_dir, vicuna_tokenizer_dir)


def test_demo_weights_rejects_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="DemoWeights.smollm2_135m"):
        DemoWeights(tmp_path, tmp_path / "missing", tmp_path)
