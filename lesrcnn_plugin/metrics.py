"""Y-channel PSNR and SSIM as SR papers (and BasicSR's ``calculate_psnr``/``calculate_ssim``) compute them.

Images are HxWx3 RGB arrays on the [0, 255] scale (uint8, or float when the SR output is not
quantised, as in MMagic's metric). Y is ITU-R BT.601 luma on the [16, 235] scale, as MATLAB's
``rgb2ycbcr``; ``crop_border`` pixels are dropped on each side (the scale, by convention). SSIM is
Wang et al.'s with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, valid region only.
"""
from __future__ import annotations

import cv2
import numpy as np

_BT601_Y = np.array([65.481, 128.553, 24.966]) / 255.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """RGB on [0, 255] to BT.601 luma on [16, 235], as float64."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an HxWx3 RGB image, got shape {image.shape}')
    return image.astype(np.float64) @ _BT601_Y + 16.0


def _prepare(sr: np.ndarray, hr: np.ndarray, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    if sr.shape != hr.shape:
        raise ValueError(f'SR {sr.shape} and HR {hr.shape} differ in shape')
    sr_y, hr_y = rgb_to_y(sr), rgb_to_y(hr)
    if crop_border:
        sr_y = sr_y[crop_border:-crop_border, crop_border:-crop_border]
        hr_y = hr_y[crop_border:-crop_border, crop_border:-crop_border]
    return sr_y, hr_y


def psnr_y(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0) -> float:
    """PSNR in dB on the Y channel (peak 255)."""
    sr_y, hr_y = _prepare(sr, hr, crop_border)
    mse = np.mean((sr_y - hr_y) ** 2)
    return float('inf') if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def ssim_y(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0) -> float:
    """SSIM on the Y channel (peak 255)."""
    sr_y, hr_y = _prepare(sr, hr, crop_border)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = kernel @ kernel.T

    def filt(image: np.ndarray) -> np.ndarray:
        return cv2.filter2D(image, -1, window)[5:-5, 5:-5]  # valid region of the 11x11 window

    mu_sr, mu_hr = filt(sr_y), filt(hr_y)
    var_sr = filt(sr_y**2) - mu_sr**2
    var_hr = filt(hr_y**2) - mu_hr**2
    cov = filt(sr_y * hr_y) - mu_sr * mu_hr
    ssim_map = ((2 * mu_sr * mu_hr + c1) * (2 * cov + c2)) / ((mu_sr**2 + mu_hr**2 + c1) * (var_sr + var_hr + c2))
    return float(ssim_map.mean())
