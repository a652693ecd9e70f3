"""Our framework-free Y-PSNR/SSIM agree with BasicSR's, which the published figures use."""
from __future__ import annotations

import numpy as np
import pytest

from lesrcnn_plugin.metrics import psnr_y, rgb_to_y, ssim_y


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(np.float64) + rng.normal(0, 6, hr.shape), 0, 255)
    return sr, hr


def test_y_of_white_and_black():
    assert rgb_to_y(np.full((1, 1, 3), 255.0))[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16.0)


def test_identical_images():
    image = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert psnr_y(image, image) == float('inf')
    assert ssim_y(image, image, crop_border=2) == pytest.approx(1.0)


@pytest.mark.parametrize('crop', [0, 2, 4])
@pytest.mark.parametrize('quantise', [True, False])
def test_matches_basicsr(pair, crop, quantise):
    from lesrcnn_plugin.compat import install_torchvision_alias
    install_torchvision_alias()
    from basicsr.metrics import calculate_psnr, calculate_ssim

    sr, hr = pair
    if quantise:
        sr = np.round(sr).astype(np.uint8)
    # BasicSR takes BGR images and converts to Y in float32; we stay in float64, hence 1e-5, far
    # below the 0.005 dB to which published figures are compared.
    kwargs = dict(crop_border=crop, input_order='HWC', test_y_channel=True)
    assert psnr_y(sr, hr, crop) == pytest.approx(calculate_psnr(sr[..., ::-1], hr[..., ::-1], **kwargs), abs=1e-5)
    assert ssim_y(sr, hr, crop) == pytest.approx(calculate_ssim(sr[..., ::-1], hr[..., ::-1], **kwargs), abs=1e-5)


def test_shape_mismatch_is_refused(pair):
    sr, hr = pair
    with pytest.raises(ValueError, match='differ in shape'):
        psnr_y(sr[:-1], hr)
