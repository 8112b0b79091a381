"""Every file the package writes goes through here: written whole or not at all.

A writer creates a temporary file beside the target and renames it over the target when the content is complete, so
a crash, a full disk or a kill never leaves half a model, report or checkpoint index behind.

    write_json("runs/x/summary.json", summary)
    with atomic_path("runs/x/final.keras") as tmp:    # for writers that take a path (Keras' model.save)
        model.save(tmp)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import tempfile


class DiskFullError(OSError):
    """The device ran out of space while writing; the target was left as it was."""

    def __str__(self):
        return self.strerror or super().__str__()


def _folder_of(path) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"Cannot write '{path}': '{folder}' is a file, not a folder.")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot write '{path}': folder '{folder}' does not exist.")
    return folder


def check_writable(path) -> str:
    """Raises a clear error unless `path` can be created or replaced (its folder exists, is writable, and `path`
    is not a folder). Call it before work that takes minutes, so a bad output path fails in milliseconds."""
    path = os.fspath(path)
    folder = _folder_of(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"Cannot write '{path}': it is a folder. Give a file name.")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"Cannot write '{path}': folder '{folder}' is not writable.")
    try:  # os.access trusts permission bits; root, read-only mounts and /proc only show on a real write
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise PermissionError(f"Cannot write '{path}': folder '{folder}' does not take new files "
                              f"({error.strerror}).") from None
    return path


def check_creatable_folder(folder) -> str:
    """Raises a clear error unless `folder` exists as a writable folder or can be created (its nearest existing
    ancestor is a writable folder); creates nothing. For output folders, before work that takes minutes."""
    folder = os.fspath(folder)
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"Cannot write into '{folder}': '{existing}' is a file, not a folder.")
    try:
        check_writable(os.path.join(existing, ".attendnext-probe"))
    except PermissionError:
        raise PermissionError(f"Cannot write into '{folder}': '{existing}' does not take new files.") from None
    return folder


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path in `path`'s folder (with the same suffix) for a writer that takes a path; renames it
    over `path` when the block ends without an error, removes it otherwise."""
    path = os.fspath(path)
    folder = _folder_of(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(fd)
    os.unlink(tmp)  # the writer creates it (Keras refuses to overwrite an existing file in some versions)
    try:
        yield tmp
        if os.path.exists(tmp):
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; give it the mode a plain open() would
        os.replace(tmp, path)
    except OSError as error:
        raise _explained(error, path) from error
    finally:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            os.unlink(tmp)


def _explained(error: OSError, path) -> OSError:
    if error.errno == errno.ENOSPC or isinstance(error, DiskFullError):
        return DiskFullError(errno.ENOSPC, f"No space left on the device holding '{os.path.dirname(os.path.abspath(path))}' "
                                          f"while writing '{os.path.basename(path)}'; nothing was replaced")
    return error


def write_atomic(path, data) -> str:
    """Writes bytes (or str, as UTF-8) to `path` atomically; returns the path."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return os.fspath(path)


def write_json(path, value, indent: int = 1) -> str:
    """`value` as JSON (non-JSON values through str, NumPy scalars as numbers), written atomically."""
    return write_atomic(path, json.dumps(value, indent=indent, ensure_ascii=False, default=_jsonable) + "\n")


def write_result(folder, stem: str, record: dict, markdown: str) -> None:
    """A benchmark's result pair, `<stem>.json` (the record) and `<stem>.md` (the report), each written atomically."""
    os.makedirs(folder, exist_ok=True)
    write_json(os.path.join(folder, f"{stem}.json"), record)
    write_atomic(os.path.join(folder, f"{stem}.md"), markdown)


def _jsonable(value):
    item = getattr(value, "item", None)  # NumPy scalars and 0-d arrays
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else str(value)


def read_json(path, what: str = "JSON file"):
    """The JSON in `path`; a missing or malformed file is a one-line error naming it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} '{path}' does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} '{path}' is a folder, not a file.")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} '{path}' is not valid JSON: {error}") from error


class FolderInUseError(RuntimeError):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder, what: str = "run"):
    """Holds `folder/.lock` (with this process's pid) while the block runs, so that two processes never write one
    output folder. A lock left by a process that no longer exists is taken over, with a logged notice."""
    import logging

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, ".lock")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            owner = _lock_owner(path)
            if owner is not None and _alive(owner):
                raise FolderInUseError(f"'{folder}' is in use by another {what} (process {owner}); wait for it to "
                                       f"finish or choose another output folder.") from None
            logging.getLogger("attendnext_keras").warning("Taking over the lock of '%s' left by process %s, which "
                                                          "no longer runs.", folder, owner)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    else:
        raise FolderInUseError(f"Could not lock '{folder}'.")
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _lock_owner(path):
    try:
        with open(path, encoding="utf-8") as f:
            return int(f.read().strip() or -1)
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def native_stderr_captured():
    """Captures what C/C++ code writes to file descriptor 2 (TensorFlow's and LiteRT's start-up and converter lines
    bypass Python's logging); the capture is replayed if the block raises, so a failure keeps its explanation."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
