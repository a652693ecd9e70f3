"""Writing files so that no reader, and no rerun after a crash, ever sees half of one.

Everything the package writes goes to a hidden name beside its target and is renamed into place
once complete (a rename within one folder is atomic). The hidden names,
``.<name>.<pid>.<8 hex digits>.<kind>``, carry the writer's process id, so that
``remove_stale_temporaries`` can delete what a killed process left behind. Folders are built the
same way: ``make_sibling_dir`` gives the hidden folder, ``replace_dir`` moves it into place.

A failure is reported about the file the user asked for, never about a hidden name: a full disk or a
read-only folder raises an ``OSError`` naming the target (``errors_name``), and the temporary is
removed.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def sibling_name(path: Path, kind: str) -> Path:
    """A fresh hidden name next to ``path`` for this process: ``.<name>.<pid>.<random>.<kind>``."""
    return path.parent / f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}'


def _is_within(name: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether path ``name`` is ``folder`` or lies inside it (compared as written, as errors spell them)."""
    name, folder = os.fspath(name), os.fspath(folder)
    return name == folder or name.startswith(folder.rstrip(os.sep) + os.sep)


@contextlib.contextmanager
def errors_name(target: str | os.PathLike, temporary: str | os.PathLike | None = None) -> Iterator[None]:
    """Re-raise an ``OSError`` about ``temporary`` (or anything inside it), or about no file, as one naming ``target``.

    A failed ``write()`` (a full disk, a quota) names no file, and a failure to create a temporary
    names the hidden temporary; either way the user asked for ``target``. An error about another
    file (an input that cannot be read) is left as it is.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and (temporary is None or not _is_within(exc.filename, temporary)):
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), os.fspath(target)) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; move it to ``path`` if the block succeeds.

    If the block raises, the temporary file is deleted and ``path`` is left as it was. The writer
    creates the file itself (rather than ``tempfile.mkstemp``, whose mode 0600 would stay with the
    result), so the published file gets the usual permissions. An ``OSError`` about the temporary
    file (a read-only folder, a full disk: a failed write names no file at all) is re-raised naming
    ``path``, the file the user asked for.
    """
    path = Path(path)
    with errors_name(path, path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling_name(path, 'tmp')
    try:
        with errors_name(path, tmp):
            yield tmp
            os.replace(tmp, path)
    finally:
        # Gone already after a successful rename. Best effort otherwise: on a read-only file system
        # even unlinking a missing file fails, and that must not hide the error being raised.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` through ``atomic_path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding='utf-8', newline='')


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through ``atomic_path``: readers see the old file, the new one or none."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def make_sibling_dir(path: Path, kind: str) -> Path:
    """Create and return a new hidden folder ``sibling_name(path, kind)`` next to ``path``.

    Being on the same file system as ``path``, it can be renamed into place atomically. Unlike
    ``tempfile.mkdtemp`` (mode 0700) it gets the usual permissions, so a folder renamed from it stays
    readable by other users.
    """
    while True:
        candidate = sibling_name(path, kind)
        try:
            with errors_name(path, candidate):
                candidate.mkdir()
            return candidate
        except FileExistsError:  # the random part collided: draw another
            continue


def replace_dir(new: Path, target: Path) -> None:
    """Move folder ``new`` to ``target``, removing an existing ``target`` only once ``new`` is in place.

    A folder cannot be renamed over a non-empty one, so the old ``target`` is first moved into a
    hidden sibling folder; a crash in between leaves it there, for ``remove_stale_temporaries``.
    """
    if not target.exists():
        os.replace(new, target)
        return
    old = make_sibling_dir(target, 'old')
    os.replace(target, old / target.name)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def remove_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Delete the hidden files and folders that processes no longer running left in ``folder``.

    A killed run leaves its temporaries (``.<name>.<pid>.<random>.<tmp|old|partial>``) behind; the
    next run removes them. Those of live processes are left alone, so that two runs writing next to
    each other do not break one another.

    Args:
        folder: the folder to clean.
        name: only temporaries made for this file or folder name; all when ``None``.

    Returns:
        The paths removed.
    """
    name_pattern = re.escape(name) if name is not None else '.+'
    pattern = re.compile(rf'^\.{name_pattern}\.(\d+)\.[0-9a-f]{{8}}\.(tmp|old|partial)$')
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = pattern.match(entry.name)
        if match and not _process_alive(int(match.group(1))):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    return True


__all__ = ['atomic_path', 'errors_name', 'make_sibling_dir', 'remove_stale_temporaries', 'replace_dir',
           'sibling_name', 'write_bytes_atomic', 'write_text_atomic']
