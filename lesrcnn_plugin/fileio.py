"""Writing files so that no reader, and no rerun after a crash, ever sees half of one.

Everything the package writes goes to a hidden name beside its target and is renamed into place
once complete (a rename within one folder is atomic). The hidden names,
``.<name>.<pid>.<8 hex digits>.<kind>``, carry the writer's process id, so that
``remove_stale_temporaries`` can delete what a killed process left behind. Folders are built the
same way: ``make_sibling_dir`` gives the hidden folder, ``replace_dir`` moves it into place.

A failure is reported about the file the user asked for, never about a hidden name: a full disk or a
read-only folder raises an ``OSError`` naming the target (``errors_name``), and the temporary is
removed. A file standing where a folder is needed is named as such (``make_folder``), not reported
as mkdir's "File exists".

``exclusive_lock`` keeps two processes from writing the same thing at once: the second waits, or is
told which process (id and host) holds the lock.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
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


class FileInTheWayError(NotADirectoryError):
    """A file stands where a folder is needed; ``filename`` is that file."""


def make_folder(path: str | os.PathLike) -> None:
    """``mkdir -p path``; a file in the way raises ``FileInTheWayError`` naming it (mkdir says "File exists")."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((folder for folder in (path, *path.parents) if folder.exists() and not folder.is_dir()), None)
        if blocker is None:
            raise
        raise FileInTheWayError(errno.ENOTDIR, 'is a file, not a folder', os.fspath(blocker)) from None


@contextlib.contextmanager
def errors_name(target: str | os.PathLike, temporary: str | os.PathLike | None = None) -> Iterator[None]:
    """Re-raise an ``OSError`` about ``temporary`` (or anything inside it), or about no file, as one naming ``target``.

    A failed ``write()`` (a full disk, a quota) names no file, and a failure to create a temporary
    names the hidden temporary; either way the user asked for ``target``. An error about another
    file (an input that cannot be read) is left as it is.
    """
    try:
        yield
    except FileInTheWayError:
        raise  # it names the file in the way, which is what the user has to move
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
        make_folder(path.parent)
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


class LockHeldError(OSError):
    """Another process holds a lock; ``owner`` is what it wrote in the lock file (``pid N on HOST``)."""

    def __init__(self, path: Path, owner: str) -> None:
        super().__init__(errno.EWOULDBLOCK, f'held by {owner or "another process"}', os.fspath(path))
        self.owner = owner


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, wait: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` for the block, then remove the file.

    The lock is ``flock``'s: the system releases it when its process dies, however it dies, so a
    killed run never leaves a lock behind. The file holds ``pid <id> on <host>`` for the message of
    the process that finds it held. POSIX systems only (``fcntl``).

    Args:
        path: the lock file, created if missing; its folder must exist.
        wait: wait for the holder to finish; otherwise raise ``LockHeldError`` at once.

    Raises:
        LockHeldError: ``wait`` is false and another process (or another block of this one) holds it.
    """
    import fcntl  # imported here so that the rest of the module works where there is no fcntl

    path = Path(path)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            owner = os.pread(descriptor, 256, 0).decode('utf-8', 'replace').strip()
            os.close(descriptor)
            raise LockHeldError(path, owner) from None
        # The holder before us removed the file as it released it: a lock on that removed file guards
        # nothing, since a third process may already hold one on a new file of the same name.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(descriptor), os.stat(path)):
                break
        os.close(descriptor)
    try:
        with contextlib.suppress(OSError):  # on a full disk the lock still holds, only its owner goes unnamed
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f'pid {os.getpid()} on {socket.gethostname()}'.encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # before releasing: a waiter then sees the file gone and starts over
        os.close(descriptor)


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


__all__ = ['FileInTheWayError', 'LockHeldError', 'atomic_path', 'errors_name', 'exclusive_lock', 'make_folder',
           'make_sibling_dir', 'remove_stale_temporaries', 'replace_dir', 'sibling_name', 'write_bytes_atomic',
           'write_text_atomic']
