"""Writing files so that no reader, and no rerun after a crash, ever sees half of one.

Everything the package writes goes to a hidden name beside its target and is renamed into place
once complete (a rename within one folder is atomic). The hidden names,
``.<name>.<pid>.<8 hex digits>.<kind>``, carry the writer's process id, so that
``lesrcnn_plugin.data.remove_stale_temporaries`` can delete what a killed process left behind.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def sibling_name(path: Path, kind: str) -> Path:
    """A fresh hidden name next to ``path`` for this process: ``.<name>.<pid>.<random>.<kind>``."""
    return path.parent / f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}'


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; move it to ``path`` if the block succeeds.

    If the block raises, the temporary file is deleted and ``path`` is left as it was. The writer
    creates the file itself (rather than ``tempfile.mkstemp``, whose mode 0600 would stay with the
    result), so the published file gets the usual permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling_name(path, 'tmp')
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful rename
