"""MATLAB-exact bicubic resize: bit-exact against MATLAB's Set5 LR files and against a literal,
loop-by-loop transcription of MATLAB's imresize on generated images."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from conftest import shared_path
from lesrcnn_plugin.data import imresize, modcrop

SET5 = ('baby', 'bird', 'butterfly', 'head', 'woman')


def _matlab_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax ** 3 - 2.5 * ax ** 2 + 1
    if ax <= 2:
        return -0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2
    return 0.0


def _reference_pass(image: np.ndarray, axis: int, scale: float) -> np.ndarray:
    """One MATLAB imresize pass, written out pixel by pixel from imresize.m's ``contributions``."""
    src = np.moveaxis(image, axis, 0).astype(np.float64)
    n_in = src.shape[0]
    n_out = math.ceil(n_in * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros((n_out,) + src.shape[1:])
    for x in range(1, n_out + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + t for t in range(math.ceil(width) + 2)]
        if scale < 1:
            weights = [scale * _matlab_cubic(scale * (u - j)) for j in taps]
        else:
            weights = [_matlab_cubic(u - j) for j in taps]
        total = sum(weights)
        for j, w in zip(taps, weights):
            if w == 0:
                continue
            # Mirror 1-based j into 1..n_in, repeating the edge pixel (MATLAB 'symmetric').
            m = (j - 1) % (2 * n_in)
            m = m if m < n_in else 2 * n_in - 1 - m
            out[x - 1] += (w / total) * src[m]
    if image.dtype == np.uint8:
        out = np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def _reference_imresize(image: np.ndarray, scale: float) -> np.ndarray:
    return _reference_pass(_reference_pass(image, 0, scale), 1, scale)


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_reproduces_matlab_set5_bit_for_bit(scale):
    hr_dir = shared_path('datasets', 'Set5', 'HR')
    lr_dir = shared_path('datasets', 'Set5', 'LR_bicubic', f'X{scale}')
    for name in SET5:
        hr = cv2.imread(str(hr_dir / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        matlab_lr = cv2.imread(str(lr_dir / f'{name}x{scale}.png'), cv2.IMREAD_UNCHANGED)
        ours = imresize(modcrop(hr, scale), 1 / scale)
        assert ours.dtype == np.uint8 and ours.shape == matlab_lr.shape, name
        mismatches = int(np.count_nonzero(ours != matlab_lr))
        assert mismatches == 0, f'{name} x{scale}: {mismatches} values differ from MATLAB'


@pytest.mark.parametrize('scale', [1 / 2, 1 / 3, 1 / 4, 0.37, 2, 1.5])
@pytest.mark.parametrize('shape', [(23, 17, 3), (19, 26)])
def test_matches_literal_transcription(scale, shape):
    image = np.random.default_rng(int(scale * 100) + len(shape)).integers(0, 256, shape, dtype=np.uint8)
    ours = imresize(image, scale)
    reference = _reference_imresize(image, scale)
    assert ours.shape == (math.ceil(shape[0] * scale), math.ceil(shape[1] * scale)) + shape[2:]
    np.testing.assert_array_equal(ours, reference)


def test_float_input_stays_unrounded():
    image = np.random.default_rng(0).random((20, 14, 3))
    out = imresize(image, 1 / 3)
    assert np.issubdtype(out.dtype, np.floating)
    np.testing.assert_allclose(out, _reference_imresize(image, 1 / 3), rtol=0, atol=1e-12)
    assert not np.allclose(out, np.round(out))


def test_uint8_rounds_between_passes():
    """Rounding after each pass differs from resizing in float and rounding once, on some pixels."""
    image = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    once = np.clip(np.floor(imresize(image.astype(np.float64), 1 / 4) + 0.5), 0, 255).astype(np.uint8)
    assert np.count_nonzero(imresize(image, 1 / 4) != once) > 0


def test_channels_are_independent_and_constants_preserved():
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (30, 21), dtype=np.uint8)
    color = np.dstack([gray, 255 - gray, gray // 2])
    out = imresize(color, 1 / 3)
    np.testing.assert_array_equal(out[:, :, 0], imresize(gray, 1 / 3))
    np.testing.assert_array_equal(out[:, :, 1], imresize(255 - gray, 1 / 3))
    flat = np.full((25, 31, 3), 97, dtype=np.uint8)
    np.testing.assert_array_equal(imresize(flat, 1 / 4), np.full((7, 8, 3), 97, dtype=np.uint8))


def test_modcrop_and_bad_arguments():
    image = np.zeros((14, 11, 3), dtype=np.uint8)
    assert modcrop(image, 4).shape == (12, 8, 3)
    assert modcrop(image[:, :, 0], 3).shape == (12, 9)
    with pytest.raises(ValueError):
        modcrop(image, 0)
    with pytest.raises(ValueError):
        imresize(image.astype(np.uint16), 0.5)
    with pytest.raises(ValueError):
        imresize(image, 0)
