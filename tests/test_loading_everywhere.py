"""Every tool reads every checkpoint the plugin's own training writes, and the authors' weights by name.

* The plugin's own files: an MMagic ``iter_2.pth`` (a training checkpoint with its message hub and
  optimizer) and a BasicSR ``net_g_2.pth``, from the test run's trainings on generated data, go
  through ``lesrcnn-upscale``, ``lesrcnn-convert`` and ``lesrcnn-export-onnx``.
* Names: ``lesrcnn-upscale -c lesrcnn_x2`` downloads through ``$LESRCNN_WEIGHTS_MIRROR`` (a local HTTP
  server on 127.0.0.1 serving ``../shared/weights`` in the upstream layout), and refuses a tampered
  file. BasicSR's ``pretrain_network_g`` and MMagic's ``load_from`` (``lesrcnn://``) take names or
  files in any format.
* Any network of the family converted to the authors' format loads back, x8 included.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _training_runs import train as basicsr_train
from _training_runs import write_div2k_like
from conftest import shared_path
from lesrcnn_plugin.archs import LESRCNN, MultiScaleLESRCNN
from lesrcnn_plugin.checkpoint import load_model, plugin_to_official, save_checkpoint
from lesrcnn_plugin.cli import convert_checkpoint, upscale
from lesrcnn_plugin.image_io import read_image, write_image
from test_weights import MirrorServer, isolated_cache  # noqa: F401  (autouse: no test reaches the internet)

REPO = Path(__file__).resolve().parents[1]


def write_inputs(folder: Path, count: int = 2) -> Path:
    rng = np.random.default_rng(0)
    for index in range(count):
        write_image(folder / f'img{index}.png', rng.integers(0, 256, (9, 11, 3), np.uint8))
    return folder


@pytest.fixture(params=['mmagic', 'basicsr'])
def own_checkpoint(request) -> Path:
    """MMagic's ``iter_2.pth`` or BasicSR's ``net_g_2.pth`` of LESRCNN x2, from the test run's training
    of that framework (tests/_training_runs.py)."""
    if request.param == 'mmagic':
        return request.getfixturevalue('mmagic_x2_training').work_dir / 'iter_2.pth'
    return request.getfixturevalue('basicsr_x2_training').experiment / 'models' / 'net_g_2.pth'


@pytest.mark.slow
def test_own_training_checkpoints_upscale_convert_and_export(own_checkpoint, tmp_path):
    checkpoint = own_checkpoint
    model = load_model(checkpoint)
    assert isinstance(model, LESRCNN) and model.default_scale == 2

    inputs = write_inputs(tmp_path / 'in')
    assert upscale.main(['-c', str(checkpoint), str(inputs), '-o', str(tmp_path / 'out')]) == 0
    assert read_image(tmp_path / 'out' / 'img0_x2.png').shape == (18, 22, 3)

    official = tmp_path / 'official.pth'
    assert convert_checkpoint.main([str(checkpoint), str(official), '--to', 'official']) == 0
    for key, value in load_model(official).state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key

    pytest.importorskip('onnxruntime')
    from lesrcnn_plugin.cli import export_onnx
    assert export_onnx.main([str(checkpoint), str(tmp_path / 'x2.onnx')]) == 0
    assert (tmp_path / 'x2.onnx').is_file()


@pytest.mark.parametrize('scale', [2, 3, 4, 8])
def test_official_layout_round_trips_every_scale(tmp_path, scale):
    """The authors' layout names one upsampler ``up``; its scale is read back from the stages (x8 too)."""
    model = LESRCNN(scale, num_feat=8)
    save_checkpoint(model.state_dict(), tmp_path / 'official.pth', 'official')
    loaded = load_model(tmp_path / 'official.pth')
    assert loaded.scales == (scale,)
    multi = MultiScaleLESRCNN((2, 4, 8), num_feat=8)
    assert set(load_model_from_official(multi, tmp_path).scales) == {2, 4, 8}


def load_model_from_official(model: torch.nn.Module, folder: Path) -> torch.nn.Module:
    torch.save(plugin_to_official(model.state_dict()), folder / 'multi_official.pth')
    return load_model(folder / 'multi_official.pth')


@pytest.fixture
def authors_mirror(tmp_path, monkeypatch):
    """A local mirror of the authors' files in the upstream layout, set as $LESRCNN_WEIGHTS_MIRROR."""
    root = tmp_path / 'mirror'
    for scale in (2, 3, 4):
        (root / f'x{scale}').mkdir(parents=True)
        (root / f'x{scale}' / f'lesrcnn_x{scale}.pth').symlink_to(
            shared_path('weights', 'lesrcnn_official', f'lesrcnn_x{scale}.pth'))
    server = MirrorServer(root)
    monkeypatch.setenv('LESRCNN_WEIGHTS_MIRROR', server.url)
    yield root
    server.stop()


def test_upscale_by_name_downloads_once_and_reproduces_the_authors(authors_mirror, tmp_path):
    reference = np.load(shared_path('reference', 'lesrcnn_official_outputs.npz'))
    lr = np.rint(reference['x2_input'][0].transpose(1, 2, 0) * 255).astype(np.uint8)
    write_image(tmp_path / 'in' / 'butterfly.png', lr[..., ::-1])
    assert upscale.main(['-c', 'lesrcnn_x2', str(tmp_path / 'in'), '-o', str(tmp_path / 'out')]) == 0
    sr = read_image(tmp_path / 'out' / 'butterfly_x2.png')[..., ::-1].astype(int)
    expected = np.rint(np.clip(reference['x2_output'][0].transpose(1, 2, 0), 0, 1) * 255)
    assert np.abs(sr - expected).max() <= 1


def test_tampered_mirror_file_is_refused_by_the_tool(authors_mirror, tmp_path, capsys, isolated_cache):
    served = authors_mirror / 'x3' / 'lesrcnn_x3.pth'
    tampered = bytearray(served.read_bytes())
    tampered[-100] ^= 0xFF
    served.unlink()
    served.write_bytes(bytes(tampered))
    write_inputs(tmp_path / 'in', count=1)
    assert upscale.main(['-c', 'lesrcnn_x3', str(tmp_path / 'in'), '-o', str(tmp_path / 'out')]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if 'error' in line.lower()]  # not the progress bar
    assert len(errors) == 1 and errors[0].startswith('error: ') and 'lesrcnn_x3' in errors[0]
    assert 'SHA256' in errors[0].upper()
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').iterdir())
    assert not [p for p in isolated_cache.rglob('*') if p.is_file()], 'the refused file stayed in the cache'


@pytest.mark.slow
def test_basicsr_pretrain_network_g_takes_the_authors_layout(tmp_path):
    """``path: pretrain_network_g`` reads a file in the authors' layout (strictly) and fine-tunes from it."""
    write_div2k_like(tmp_path, scales=(2,))
    start = LESRCNN(2)
    torch.nn.init.normal_(start.refinement.to_rgb.weight, std=1e-3)
    save_checkpoint(start.state_dict(), tmp_path / 'authors_layout.pth', 'official')
    result = basicsr_train(tmp_path, 'train_lesrcnn_x2.yml', 'name=finetune', 'datasets:train:gt_size=16',
                           f'path:pretrain_network_g={tmp_path / "authors_layout.pth"}', 'logger:save_checkpoint_freq=1',
                           'val:val_freq=4', 'train:total_iter=1', 'train:optim_g:lr=0')
    assert 'authors_layout.pth' in result.stdout + result.stderr
    tuned = load_model(tmp_path / 'experiments' / 'finetune' / 'models' / 'net_g_1.pth')
    for key, value in start.state_dict().items():  # a learning rate of 0 keeps the loaded weights
        assert torch.equal(tuned.state_dict()[key], value), key


def test_mmagic_load_from_takes_a_weights_scheme(tmp_path):
    pytest.importorskip('mmagic')
    import lesrcnn_plugin.mmagic  # noqa: F401  (registers the lesrcnn:// scheme)
    from mmagic.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import load_checkpoint

    init_default_scope('mmagic')

    source = LESRCNN(3, num_feat=8)
    save_checkpoint(source.state_dict(), tmp_path / 'w.pth', 'official')
    model = MODELS.build(dict(type='BaseEditModel', generator=dict(type='LESRCNN', upscale=3, num_feat=8),
                              pixel_loss=dict(type='MSELoss'),
                              data_preprocessor=dict(type='DataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255])))
    load_checkpoint(model, f'lesrcnn://{tmp_path / "w.pth"}', strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(model.generator.state_dict()[key], value), key


@pytest.mark.slow
def test_crafted_checkpoint_runs_no_code_through_mmengine_after_import(tmp_path):
    """Once the integration is imported, mmengine's own loader (what ``mim train --resume`` uses) reads
    files as data: a pickle that would run code is refused."""
    pytest.importorskip('mmagic')
    marker = tmp_path / 'marker'
    code = (f'import os, torch\nclass Evil:\n    def __reduce__(self):\n'
            f'        return (os.system, ("touch {marker}",))\n'
            f'torch.save({{"state_dict": {{}}, "evil": Evil()}}, "{tmp_path / "evil.pth"}")\n')
    subprocess.run([sys.executable, '-c', code], check=True)
    probe = ('import lesrcnn_plugin.mmagic\nfrom mmengine.runner.checkpoint import CheckpointLoader\n'
             f'CheckpointLoader.load_checkpoint("{tmp_path / "evil.pth"}")\n')
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True)
    assert result.returncode != 0 and ('os.system' in result.stderr or 'posix.system' in result.stderr), result.stderr
    assert not marker.exists(), 'the crafted checkpoint ran code'
