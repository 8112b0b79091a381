"""attendnext_keras._io: every artefact is written whole or not at all, and write errors are one clear line."""

import errno
import json
import os

import pytest

from attendnext_keras import _io


def test_write_atomic_leaves_no_partial_file(tmp_path):
    target = tmp_path / "model.tflite"
    with pytest.raises(TypeError):
        _io.write_atomic(target, 12345)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _io.write_atomic(tmp_path / "missing" / "model.tflite", b"TFL3")
    _io.write_atomic(target, b"1234TFL3")
    assert target.read_bytes() == b"1234TFL3" and len(list(tmp_path.iterdir())) == 1
    _io.write_atomic(target, "text é")
    assert target.read_text(encoding="utf-8") == "text é"


def test_a_full_disk_keeps_the_old_file_and_says_so(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    _io.write_json(target, {"old": 1})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(_io.DiskFullError, match=r"No space left on the device holding '.*' while writing "
                                                r"'summary.json'; nothing was replaced"):
        _io.write_json(target, {"new": 2})
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # the temporary file is gone too


def test_a_path_whose_parent_is_a_file_fails_even_as_root(tmp_path):
    """Permission tests skip as root; a parent that is a file fails for every user."""
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        _io.write_atomic(tmp_path / "afile" / "model.tflite", b"x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        _io.check_writable(tmp_path / "afile" / "model.tflite")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        _io.check_writable(tmp_path)


def test_write_json_takes_numpy_values_and_read_json_names_bad_files(tmp_path):
    import numpy as np

    path = _io.write_json(tmp_path / "a.json", {"x": np.float32(0.5), "n": np.int64(3), "v": np.arange(2)})
    assert _io.read_json(path) == {"x": 0.5, "n": 3, "v": [0, 1]}
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"Result file '.*bad.json' is not valid JSON"):
        _io.read_json(tmp_path / "bad.json", "Result file")
    with pytest.raises(FileNotFoundError, match="Result file '.*missing.json' does not exist"):
        _io.read_json(tmp_path / "missing.json", "Result file")


def test_atomic_path_removes_the_temporary_file_when_the_writer_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with _io.atomic_path(tmp_path / "final.keras") as tmp:
            open(tmp, "wb").write(b"half")
            raise RuntimeError("writer crashed")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_takes_no_files_fails_before_any_work():
    """/proc passes os.access as root but takes no new file: found by a real write, in milliseconds."""
    with pytest.raises(PermissionError, match="folder '/proc' does not take new files"):
        _io.check_writable("/proc/model.tflite")
