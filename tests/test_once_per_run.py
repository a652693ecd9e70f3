"""``once_per_run`` (tests/_training_runs.py): a training that several tests read is built once per
test run even when the tests run on two pytest-xdist workers, and a failed build is not read back."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

WORKER = f'''
import sys, time
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
from _training_runs import once_per_run

run_root, worker, fail = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == 'fail'

class Factory:  # what pytest-xdist gives each worker: its own folder under the run's
    def getbasetemp(self):
        return run_root / f'popen-{{worker}}'

def build(folder):
    with open(run_root / 'builds.log', 'a') as log:
        log.write(worker + '\\n')
    (folder / 'half-made').touch()
    time.sleep(1)  # the other worker asks meanwhile
    if fail:
        raise RuntimeError('build failed')
    return {{'folder': str(folder), 'by': worker}}

print(once_per_run(Factory(), 'training', build, dict, dict)['by'])
'''


def start(tmp_path: Path, worker: str, fail: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, '-c', WORKER, str(tmp_path), worker, 'fail' if fail else 'ok'],
                            env={**os.environ, 'PYTEST_XDIST_WORKER': worker}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_workers_build_once_and_read_the_same_record(tmp_path):
    workers = [start(tmp_path, 'gw0'), start(tmp_path, 'gw1')]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    builders = (tmp_path / 'builds.log').read_text().split()
    assert len(builders) == 1  # the other worker waited on the lock, then read the record
    assert [out.strip() for out, _ in outputs] == builders * 2


def test_a_failed_build_is_built_again_by_the_next_worker(tmp_path):
    failing = start(tmp_path, 'gw0', fail=True)
    _, err = failing.communicate(timeout=120)
    assert failing.returncode != 0 and 'build failed' in err
    succeeding = start(tmp_path, 'gw1')
    out, err = succeeding.communicate(timeout=120)
    assert succeeding.returncode == 0, err
    assert out.strip() == 'gw1' and (tmp_path / 'builds.log').read_text().split() == ['gw0', 'gw1']
