"""Registration of the family into BasicSR, and the pieces of LESRCNNModel that need no training run."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
import torch

import lesrcnn_plugin.basicsr as integration
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY, Registry
from lesrcnn_plugin.archs import ARCHS
from lesrcnn_plugin.basicsr.lesrcnn_model import LESRCNNModel, amp_dtype, draw_scale, resolve_crop_border


def test_every_network_model_and_dataset_is_registered():
    for name, cls in ARCHS.items():
        assert ARCH_REGISTRY.get(name) is cls
    assert MODEL_REGISTRY.get('LESRCNNModel') is LESRCNNModel
    assert DATASET_REGISTRY.get('MultiScalePairedImageDataset') is integration.MultiScalePairedImageDataset


def test_lesrcnn_builds_from_a_basicsr_network_option():
    net = build_network({'type': 'LESRCNN', 'upscale': 3})
    assert type(net) is ARCHS['LESRCNN'] and net(torch.rand(1, 3, 6, 5)).shape == (1, 3, 18, 15)


def test_registration_is_idempotent():
    integration.register_all()
    importlib.reload(integration)  # a re-import defines the model and dataset classes again
    for name, cls in ARCHS.items():
        assert ARCH_REGISTRY.get(name) is cls


def test_a_different_object_under_the_same_name_is_an_error():
    registry = Registry('scratch')
    integration.register(registry, ARCHS['LESRCNN'])
    integration.register(registry, ARCHS['LESRCNN'])  # the same class again: nothing happens
    impostor = type('LESRCNN', (torch.nn.Module,), {})
    with pytest.raises(integration.RegistrationError, match="'LESRCNN'"):
        integration.register(registry, impostor)
    assert registry.get('LESRCNN') is ARCHS['LESRCNN']


@pytest.mark.slow
def test_both_integrations_import_together():
    # In a fresh interpreter, so that the MMagic side registers for the first time here too.
    code = ('import importlib\n'
            'import lesrcnn_plugin.mmagic\n'
            'import lesrcnn_plugin.basicsr\n'
            'importlib.reload(lesrcnn_plugin.basicsr)\n'
            'from basicsr.utils.registry import ARCH_REGISTRY\n'
            'from lesrcnn_plugin.archs import ARCHS\n'
            'assert all(ARCH_REGISTRY.get(n) is c for n, c in ARCHS.items())\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_scale_draw_is_reproducible_and_covers_every_scale():
    draws = [draw_scale([4, 2, 3], seed=10, current_iter=i) for i in range(1, 61)]
    assert draws == [draw_scale([2, 3, 4], seed=10, current_iter=i) for i in range(1, 61)]
    assert set(draws) == {2, 3, 4}
    assert draws != [draw_scale([2, 3, 4], seed=11, current_iter=i) for i in range(1, 61)]


def test_crop_border_scale_resolves_per_validation_set():
    metrics = {'psnr': {'type': 'calculate_psnr', 'crop_border': 'scale', 'test_y_channel': True},
               'ssim': {'type': 'calculate_ssim', 'crop_border': 4, 'test_y_channel': True}}
    resolved = resolve_crop_border(metrics, 3, 'Set5_x3')
    assert resolved['psnr']['crop_border'] == 3 and resolved['ssim']['crop_border'] == 4
    assert metrics['psnr']['crop_border'] == 'scale'  # the options themselves are left as they were
    with pytest.raises(ValueError, match='Set5_x3'):
        resolve_crop_border(metrics, None, 'Set5_x3')


@pytest.mark.parametrize('setting, dtype', [('bf16', torch.bfloat16), ('fp16', torch.float16), (False, None),
                                            (None, None)])
def test_amp_setting(setting, dtype):
    assert amp_dtype(setting) == dtype


def test_amp_setting_rejects_unknown_values():
    with pytest.raises(ValueError, match='bf16, fp16 or false'):
        amp_dtype('int8')
