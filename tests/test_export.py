"""ONNX export: dynamic shapes, parity with PyTorch in onnxruntime, fp16, and the export CLI."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from conftest import shared_path
from lesrcnn_plugin.archs import DualKernelLESRCNN, LESRCNN, MultiScaleLESRCNN
from lesrcnn_plugin.checkpoint import save_checkpoint
from lesrcnn_plugin.cli import export_onnx as export_cli
from lesrcnn_plugin.export import DEFAULT_OPSET, FP16_TOLERANCE, FP32_TOLERANCE, export_onnx, onnx_parity

ort = pytest.importorskip('onnxruntime')


def small(cls, *args, **kwargs):
    torch.manual_seed(0)
    return cls(*args, num_feat=16, **kwargs).eval()


#: name -> (network, scale to export)
NETWORKS = {
    'x2': (lambda: small(LESRCNN, 2), None),
    'x4_ieeb_rb': (lambda: small(LESRCNN, 4, variant='ieeb_rb'), None),
    'dual_x3': (lambda: small(DualKernelLESRCNN, 3), None),
    'multi_x3': (lambda: small(MultiScaleLESRCNN, (2, 3, 4)), 3),
}


@pytest.mark.parametrize('name', sorted(NETWORKS))
@pytest.mark.parametrize('fast', [True, False], ids=['fast', 'reference'])
def test_onnx_matches_pytorch_at_other_sizes(tmp_path, name, fast):
    make, scale = NETWORKS[name]
    model = make()
    path = export_onnx(model, tmp_path / f'{name}.onnx', scale=scale, fast=fast)
    graph = onnx.load(str(path))
    assert graph.opset_import[0].version == DEFAULT_OPSET
    assert not any(node.domain for node in graph.graph.node)  # standard operators only
    assert onnx_parity(path, model, scale) <= FP32_TOLERANCE  # odd sizes and a batch of 2, traced at 32x32


def test_parity_check_can_fail(tmp_path):
    path = export_onnx(small(LESRCNN, 2), tmp_path / 'a.onnx')
    torch.manual_seed(1)
    other = LESRCNN(2, num_feat=16).eval()
    assert onnx_parity(path, other) > 1e-2


def test_fp16_export(tmp_path):
    model = small(LESRCNN, 2)
    path = export_onnx(model, tmp_path / 'half.onnx', fp16=True)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].type == 'tensor(float16)'
    assert session.get_outputs()[0].type == 'tensor(float16)'
    assert onnx_parity(path, model) <= FP16_TOLERANCE


def test_cli_exports_and_prints_the_difference(tmp_path, capsys):
    torch.manual_seed(2)
    save_checkpoint(LESRCNN(3).state_dict(), tmp_path / 'w.pth', 'mmagic')
    assert export_cli.main([str(tmp_path / 'w.pth'), str(tmp_path / 'out' / 'w.onnx')]) == 0
    out = capsys.readouterr().out
    assert 'LESRCNN x3 (fast path, fp32, opset 17): max |onnxruntime - PyTorch| =' in out and ' ok' in out
    session = ort.InferenceSession(str(tmp_path / 'out' / 'w.onnx'), providers=['CPUExecutionProvider'])
    (sr,) = session.run(None, {'lr': np.random.default_rng(0).random((1, 3, 7, 9), dtype=np.float32)})
    assert sr.shape == (1, 3, 21, 27)
    assert [p.name for p in (tmp_path / 'out').iterdir()] == ['w.onnx']  # no temporary file left


def test_cli_fails_and_writes_nothing_when_parity_fails(tmp_path, capsys, monkeypatch):
    torch.manual_seed(3)
    save_checkpoint(LESRCNN(2).state_dict(), tmp_path / 'w.pth', 'basicsr')
    monkeypatch.setattr(export_cli, 'onnx_parity', lambda *args, **kwargs: 0.5)
    assert export_cli.main([str(tmp_path / 'w.pth'), str(tmp_path / 'w.onnx')]) == 1
    captured = capsys.readouterr()
    assert 'FAILED' in captured.out and 'parity check failed' in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['w.pth']


def test_cli_exports_the_official_weights(tmp_path, capsys):
    official = shared_path('weights', 'lesrcnn_official', 'lesrcnn_x4.pth')
    assert export_cli.main([str(official), str(tmp_path / 'x4.onnx')]) == 0
    assert 'LESRCNN x4 (fast path, fp32' in capsys.readouterr().out
    reference = np.load(shared_path('reference', 'lesrcnn_official_outputs.npz'))
    session = ort.InferenceSession(str(tmp_path / 'x4.onnx'), providers=['CPUExecutionProvider'])
    (sr,) = session.run(None, {'lr': reference['x4_input']})
    assert np.abs(sr - reference['x4_output']).max() <= FP32_TOLERANCE
