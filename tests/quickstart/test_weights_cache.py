import json

import pytest

from llava_vitsplit.quickstart.weights.cache import (
    CACHE_ENV_VAR,
    COMPLETE_MARKER,
    build_once,
    cache_root,
    is_complete,
)


def test_cache_root_prefers_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "from_env"))
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert cache_root() == tmp_path / "from_env"
    monkeypatch.delenv(CACHE_ENV_VAR)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "llava_vitsplit"


def test_cache_root_rejects_a_file(tmp_path):
    path = tmp_path / "not_a_dir"
    path.write_text("x")
    with pytest.raises(NotADirectoryError, match="not_a_dir"):
        cache_root(path)


def test_build_once_publishes_with_marker_and_then_reuses(tmp_path):
    calls = []

    def build(work_dir):
        calls.append(work_dir)
        (work_dir / "weights.txt").write_text("converted")

    target = tmp_path / "model"
    assert build_once(target, build, {"source": "pkg==1"}) == target
    assert (target / "weights.txt").read_text() == "converted"
    assert json.loads((target / COMPLETE_MARKER).read_text()) == {"source": "pkg==1"}
    build_once(target, build, {"source": "pkg==1"})
    assert len(calls) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no partial folders left behind


def test_interrupted_build_leaves_nothing_complete_and_is_redone(tmp_path):
    target = tmp_path / "model"

    def failing_build(work_dir):
        (work_dir / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_once(target, failing_build, {})
    assert not target.exists() and list(tmp_path.iterdir()) == []

    # A folder without the marker (e.g. from a crash mid-rename by an older run) is rebuilt.
    target.mkdir()
    (target / "stale.txt").write_text("stale")
    build_once(target, lambda d: (d / "fresh.txt").write_text("fresh"), {})
    assert is_complete(target)
    assert sorted(p.name for p in target.iterdir()) == [COMPLETE_MARKER, "fresh.txt"]
