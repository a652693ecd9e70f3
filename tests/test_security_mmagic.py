"""mmengine reads every checkpoint as data once ``lesrcnn_plugin.mmagic`` is imported (issue 20).

Every scheme of mmengine's ``CheckpointLoader`` (local files, http(s) URLs, its model lists, and the
schemes it cannot read as data, refused) is checked in this process; one training run checks
``lesrcnn-mmagic-train --cfg-options load_from=URL`` as a user runs it. Downloads come from a local
HTTP server on 127.0.0.1 serving a temporary folder.
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmagic')

import lesrcnn_plugin.mmagic  # noqa: E402,F401  (installs the loaders)
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint, find_latest_checkpoint  # noqa: E402

from conftest import shared_path  # noqa: E402
from lesrcnn_plugin.archs import build_arch  # noqa: E402
from lesrcnn_plugin.errors import CheckpointError  # noqa: E402
from test_security_code import PickleCallsCode, assert_refused  # noqa: E402

BIN = Path(sys.executable).parent


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, base URL); torch.hub's cache (where downloads go) in the test's folder."""
    folder = tmp_path / 'served'
    folder.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{httpd.server_port}'
    httpd.shutdown()
    thread.join()


def payload(folder: Path, marker: Path) -> None:
    torch.save({'state_dict': {'generator.weight': PickleCallsCode(marker)}}, folder / 'payload.pth')


def test_every_scheme_reads_as_data():
    modules = {scheme: loader.__module__ for scheme, loader in CheckpointLoader._schemes.items()}
    assert {'', 'http://', 'https://', 'open-mmlab://', 'openmmlab://', 'mmcls://', 'torchvision://', 'modelzoo://',
            'pavi://', 'lesrcnn://'} <= set(modules)
    assert set(modules.values()) == {'lesrcnn_plugin.mmagic.checkpoints'}, modules


@pytest.mark.parametrize('url', ['pavi://model', 's3://bucket/model.pth', 'petrel://bucket/model.pth'])
def test_schemes_not_read_as_data_are_refused(url):
    with pytest.raises(CheckpointError, match=f'^{url}: checkpoints are read as inert data from files, http'):
        _load_checkpoint(url)


def test_a_pickle_by_url_is_refused_and_not_cached(server, tmp_path):
    folder, base = server
    marker = tmp_path / 'pickle_ran'
    payload(folder, marker)
    torch.load(folder / 'payload.pth', weights_only=False)  # what mmengine's own http loader does
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match=f'^{base}/payload.pth -> .*payload.pth: refuses to load global posix'):
        _load_checkpoint(f'{base}/payload.pth')
    assert not marker.exists()
    assert not list((tmp_path / 'torch_home').rglob('payload.pth')), 'a refused download stays out of the cache'


def test_url_download_failures_are_one_line(server):
    _, base = server
    with pytest.raises(CheckpointError, match=f'^{base}/missing.pth: cannot download \\(HTTP Error 404'):
        _load_checkpoint(f'{base}/missing.pth')


def test_a_url_larger_than_the_limit_is_stopped_and_not_cached(server, tmp_path, monkeypatch):
    folder, base = server
    (folder / 'big.pth').write_bytes(b'\0' * 5000)
    monkeypatch.setenv('LESRCNN_MAX_CHECKPOINT_BYTES', '4096')
    with pytest.raises(CheckpointError, match=f'^{base}/big.pth: larger than 4,096 bytes, not downloaded \\(raise '
                                              'the limit with LESRCNN_MAX_CHECKPOINT_BYTES=BYTES'):
        _load_checkpoint(f'{base}/big.pth')
    assert not [path for path in (tmp_path / 'torch_home').rglob('*') if path.is_file()], 'nothing is kept'


def test_model_list_names_and_last_checkpoint_go_through_the_same_reader(server, tmp_path, monkeypatch):
    folder, base = server
    marker = tmp_path / 'pickle_ran'
    payload(folder, marker)
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    payload(home, marker)
    (home / 'open_mmlab.json').write_text(json.dumps({'remote': f'{base}/payload.pth', 'local': 'payload.pth'}))
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    for name in ('open-mmlab://remote', 'openmmlab://local'):
        with pytest.raises(CheckpointError, match='refuses to load global posix.system'):
            _load_checkpoint(name)
    (tmp_path / 'last_checkpoint').write_text(f'{base}/payload.pth')  # what mmengine's --resume reads
    with pytest.raises(CheckpointError, match='refuses to load global posix.system'):
        _load_checkpoint(find_latest_checkpoint(str(tmp_path)))
    assert not marker.exists()


def test_a_config_inside_a_checkpoint_is_not_executed(tmp_path):
    """``Runner.resume`` executes ``meta['config']`` as a Python config; the reader drops it."""
    import mmengine

    marker = tmp_path / 'config_ran'
    config = f"x = __import__('os').system('touch {marker}')"
    mmengine.Config.fromstring(config, file_format='.py')
    assert marker.exists()
    marker.unlink()
    torch.save({'meta': {'config': config, 'iter': 2}, 'state_dict': {}}, tmp_path / 'iter_2.pth')
    assert _load_checkpoint(str(tmp_path / 'iter_2.pth'))['meta'] == {'iter': 2}


def test_load_from_refuses_nan_weights(tmp_path):
    state = {f'generator.{k}': v for k, v in build_arch('LESRCNN', upscale=2).state_dict().items()}
    state['generator.refinement.to_rgb.weight'][0, 0, 0, 0] = float('nan')
    torch.save({'state_dict': state}, tmp_path / 'nan.pth')
    with pytest.raises(CheckpointError, match='nan.pth: non-finite weights \\(NaN or Inf\\) in '
                                              'generator.refinement.to_rgb.weight$'):
        _load_checkpoint(str(tmp_path / 'nan.pth'))


def test_the_authors_weights_as_load_from_fill_the_generator():
    """Converted to MMagic's layout, as BasicSR's pretrain_network_g converts them: every weight loads."""
    from mmagic.models import BaseEditModel
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    from lesrcnn_plugin.checkpoint import load_model

    official = shared_path('weights/lesrcnn_official/lesrcnn_x2.pth')
    model = BaseEditModel(generator=dict(type='LESRCNN', upscale=2), pixel_loss=dict(type='L1Loss'))
    _load_checkpoint_to_model(model, _load_checkpoint(str(official)), strict=True)
    expected = load_model(official).state_dict()
    assert all(torch.equal(model.generator.state_dict()[key], value) for key, value in expected.items())


@pytest.mark.slow
def test_mmagic_train_refuses_a_pickle_given_as_load_from_url(server, tmp_path):
    from _training_runs import TINY, make_datasets

    folder, base = server
    marker = tmp_path / 'pickle_ran'
    payload(folder, marker)
    make_datasets(tmp_path)
    result = subprocess.run([str(BIN / 'lesrcnn-mmagic-train'), 'lesrcnn:lesrcnn_x2_div2k', '--work-dir', 'work',
                             '--cfg-options', *TINY, 'train_cfg.max_iters=1', f'load_from={base}/payload.pth'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert_refused(result, f'{base}/payload.pth -> ', 'refuses to load global posix.system')
    assert not marker.exists()
