"""atomic_path: the one way the package writes files (temporary name beside the target, then rename)."""
from __future__ import annotations

import os
import stat

import pytest

from lesrcnn_plugin.fileio import atomic_path, remove_stale_temporaries, sibling_name


def test_success_publishes_with_the_usual_permissions(tmp_path):
    target = tmp_path / 'sub' / 'out.txt'
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith('.out.txt.')
        tmp.write_text('new')
        assert not target.exists()  # nothing is visible before the block ends
    assert target.read_text() == 'new'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ['out.txt']


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / 'out.txt'
    target.write_text('old')
    with pytest.raises(RuntimeError, match='writer failed'):
        with atomic_path(target) as tmp:
            tmp.write_text('half')
            raise RuntimeError('writer failed')
    assert target.read_text() == 'old'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.txt']


def test_leftovers_of_a_dead_process_are_recognised(tmp_path):
    """A killed writer's temporary carries its pid, so the data tools' clean-up can remove it."""
    leftover = sibling_name(tmp_path / 'out.txt', 'tmp')
    leftover.write_text('half')
    dead_pid = 2**22 + 1  # above Linux's largest pid: no process has it
    stale = leftover.with_name(leftover.name.replace(f'.{os.getpid()}.', f'.{dead_pid}.'))
    leftover.rename(stale)
    assert remove_stale_temporaries(tmp_path, 'out.txt') == [stale]
    assert not stale.exists()
