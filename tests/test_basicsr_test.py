"""``python -m lesrcnn_plugin.basicsr.test`` on the shipped test options, dataroots and weights overridden.

The metrics are read back from the log BasicSR writes under ``results/<name>/`` in the working
directory, and compared with an independent computation (the plugin's network and
``lesrcnn_plugin.metrics``) on generated images, and with the authors' figures on Set5.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import shared_path
from lesrcnn_plugin.archs import build_arch
from lesrcnn_plugin.checkpoint import save_checkpoint
from lesrcnn_plugin.cli.convert_checkpoint import main as convert
from lesrcnn_plugin.metrics import psnr_y, ssim_y

REPO = Path(__file__).resolve().parents[1]
OPTIONS = REPO / 'options'
HR_SHAPES = [(38, 45), (48, 36)]  # (H, W); not all multiples of the scale, so BasicSR crops the HR

# The authors' code on Set5 (EDSR layout, HR cropped to LR*k, Y channel, crop k, SR rounded to uint8).
SET5_REFERENCE = {2: (37.7957, 0.9598), 3: (34.0247, 0.9243), 4: (31.9215, 0.8915)}


def run_test(cwd: Path, options: str, overrides: list[str]) -> Path:
    """Run the test entry point in ``cwd``; returns the log it wrote."""
    command = [sys.executable, '-m', 'lesrcnn_plugin.basicsr.test', '-opt', str(OPTIONS / options),
               '--force_yml', 'val:save_img=false', *overrides]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'testing failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    logs = list((cwd / 'results').glob('*/test_*.log'))
    assert len(logs) == 1, f'expected one test log under {cwd / "results"}, found {logs}'
    return logs[0]


def logged_metrics(log: Path, dataset: str) -> tuple[float, float]:
    """The PSNR and SSIM BasicSR logged for ``dataset``."""
    match = re.search(rf'Validation {re.escape(dataset)}\n\t # psnr: (\S+)[^\n]*\n\t # ssim: (\S+)', log.read_text())
    assert match, f'no metrics for {dataset} in {log}'
    return float(match.group(1)), float(match.group(2))


def dataset_keys(cwd: Path, options: str) -> list[str]:
    """The ``datasets`` keys of an option file, e.g. ``['test_1', 'test_2', ...]``."""
    text = (OPTIONS / options).read_text()
    return re.findall(r'^  (test_\d+):$', text, flags=re.MULTILINE)


def write_pairs(root: Path, scale: int, seed: int) -> tuple[Path, Path]:
    """HR images (sizes not all multiples of ``scale``) and their downscaled LR, same file names."""
    rng = np.random.default_rng(seed)
    hr_dir, lr_dir = root / f'X{scale}' / 'HR', root / f'X{scale}' / 'LR'
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    for i, (h, w) in enumerate(HR_SHAPES):
        hr = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (5, 5), 2.0)
        cv2.imwrite(str(hr_dir / f'img{i}.png'), hr)
        cv2.imwrite(str(lr_dir / f'img{i}.png'), cv2.resize(hr, (w // scale, h // scale), interpolation=cv2.INTER_AREA))
    return hr_dir, lr_dir


def expected_metrics(net: torch.nn.Module, hr_dir: Path, lr_dir: Path, scale: int,
                     forward_kwargs: dict | None = None) -> tuple[float, float]:
    """Mean Y-PSNR/SSIM of ``net`` on the pairs, SR rounded to uint8, HR cropped to LR*scale, crop = scale."""
    psnrs, ssims = [], []
    for hr_path in sorted(hr_dir.glob('*.png')):
        hr = cv2.imread(str(hr_path))[..., ::-1]
        lr = cv2.imread(str(lr_dir / hr_path.name))[..., ::-1]
        with torch.no_grad():
            sr = net(torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255, **(forward_kwargs or {}))
        sr = (sr[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hr = hr[:lr.shape[0] * scale, :lr.shape[1] * scale]
        psnrs.append(psnr_y(sr, hr, scale))
        ssims.append(ssim_y(sr, hr, scale))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def random_weights(tmp_path: Path, arch: str, **kwargs) -> tuple[torch.nn.Module, Path]:
    """A randomly initialised network and its weights in BasicSR's format."""
    torch.manual_seed(0)
    net = build_arch(arch, **kwargs).eval()
    path = tmp_path / f'{arch}_basicsr.pth'
    save_checkpoint(net.state_dict(), path, 'basicsr')
    return net, path


@pytest.mark.slow
def test_single_scale_options_report_the_metrics_of_the_network(tmp_path):
    # With BasicSR's own SRModel: the registered network works without LESRCNNModel too.
    options, scale = 'test_lesrcnn_x3.yml', 3
    net, weights = random_weights(tmp_path, 'LESRCNN', upscale=scale)
    hr_dir, lr_dir = write_pairs(tmp_path / 'data', scale, seed=scale)
    overrides = ['model_type=SRModel', f'path:pretrain_network_g={weights}']
    for key in dataset_keys(tmp_path, options):  # every set of the file on the generated pairs
        overrides += [f'datasets:{key}:dataroot_gt={hr_dir}', f'datasets:{key}:dataroot_lq={lr_dir}']
    log = run_test(tmp_path, options, overrides)

    psnr, ssim = expected_metrics(net, hr_dir, lr_dir, scale)
    for dataset in ('Set5', 'Set14', 'BSD100', 'Urban100'):
        logged_psnr, logged_ssim = logged_metrics(log, dataset)
        assert logged_psnr == pytest.approx(psnr, abs=2e-3)
        assert logged_ssim == pytest.approx(ssim, abs=2e-4)


@pytest.mark.slow
def test_multiscale_options_run_each_set_at_its_scale(tmp_path):
    options = 'test_multiscale_lesrcnn.yml'
    net, weights = random_weights(tmp_path, 'MultiScaleLESRCNN', scales=(2, 3, 4))
    folders = {k: write_pairs(tmp_path / 'data', k, seed=k) for k in (2, 3, 4)}
    overrides = [f'path:pretrain_network_g={weights}']
    text = (OPTIONS / options).read_text()
    for key in dataset_keys(tmp_path, options):
        scale = int(re.search(rf'^  {key}:\n(?:    .*\n)*?    scale: (\d)', text, flags=re.MULTILINE).group(1))
        hr_dir, lr_dir = folders[scale]
        overrides += [f'datasets:{key}:dataroot_gt={hr_dir}', f'datasets:{key}:dataroot_lq={lr_dir}']
    log = run_test(tmp_path, options, overrides)

    for k, (hr_dir, lr_dir) in folders.items():
        psnr, ssim = expected_metrics(net, hr_dir, lr_dir, k, {'scale': k})
        for dataset in ('Set5', 'Set14', 'BSD100', 'Urban100'):
            logged_psnr, logged_ssim = logged_metrics(log, f'{dataset}_x{k}')
            assert logged_psnr == pytest.approx(psnr, abs=2e-3), f'{dataset}_x{k}'
            assert logged_ssim == pytest.approx(ssim, abs=2e-4), f'{dataset}_x{k}'


@pytest.mark.slow
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_official_weights_reproduce_the_authors_set5_figures(tmp_path, official_weights, scale):
    set5 = shared_path('datasets', 'Set5')
    weights = tmp_path / 'experiments' / 'pretrained_models' / f'lesrcnn_x{scale}_basicsr.pth'
    assert convert([str(official_weights(scale)), str(weights), '--to', 'basicsr']) == 0
    options = f'test_lesrcnn_x{scale}.yml'
    # Set5 in the EDSR layout for the first set; the others on a small generated pair, to keep this fast.
    hr_dir, lr_dir = write_pairs(tmp_path / 'data', scale, seed=scale)
    overrides = [f'datasets:test_1:dataroot_gt={set5 / "HR"}', f'datasets:test_1:dataroot_lq={set5 / "LR_bicubic" / f"X{scale}"}',
                 f'datasets:test_1:filename_tmpl={{}}x{scale}']
    for key in dataset_keys(tmp_path, options)[1:]:
        overrides += [f'datasets:{key}:dataroot_gt={hr_dir}', f'datasets:{key}:dataroot_lq={lr_dir}']
    # The default pretrain path of the options (experiments/pretrained_models/...) is used as is.
    log = run_test(tmp_path, options, overrides)

    psnr, ssim = logged_metrics(log, 'Set5')
    reference_psnr, reference_ssim = SET5_REFERENCE[scale]
    assert psnr == pytest.approx(reference_psnr, abs=0.005)
    assert ssim == pytest.approx(reference_ssim, abs=0.0005)
