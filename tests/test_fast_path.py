"""FastLESRCNN equals the reference networks within 1e-5, for every variant, scale and memory format.

Random weights (not the trained ones) are used so that the test needs no external file; the
weights are scaled so the activations stay of order one, as in a trained network.
"""
from __future__ import annotations

import pytest
import torch

from lesrcnn_plugin.archs import VARIANTS, DualKernelLESRCNN, LESRCNN, MultiScaleLESRCNN
from lesrcnn_plugin.archs.fast import FastLESRCNN, fused_kernels_available

TOLERANCE = 1e-5
EXECUTION_PATHS = [False] + ([True] if fused_kernels_available() else [])


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``model`` in eval mode with random non-zero weights and biases (mean shifts kept)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if 'mean' not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    return model.eval()


def max_difference(reference: torch.nn.Module, fast: FastLESRCNN, x: torch.Tensor, **kwargs) -> float:
    with torch.no_grad():
        expected = reference(x, **kwargs)
        actual = fast(x, **kwargs)
    assert actual.shape == expected.shape
    return (actual - expected).abs().max().item()


@pytest.fixture
def image() -> torch.Tensor:
    # Odd, non-square size and a batch of two: borders and batching are both exercised.
    return torch.rand(2, 3, 11, 9, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('fuse_kernels', EXECUTION_PATHS)
@pytest.mark.parametrize('variant', sorted(VARIANTS))
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_lesrcnn_every_variant_and_scale(image, scale, variant, fuse_kernels):
    reference = randomised(LESRCNN(scale, variant=variant))
    assert max_difference(reference, FastLESRCNN(reference, fuse_kernels=fuse_kernels), image) < TOLERANCE


@pytest.mark.parametrize('fuse_kernels', EXECUTION_PATHS)
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_channels_last(image, scale, fuse_kernels):
    reference = randomised(LESRCNN(scale))
    fast = FastLESRCNN(reference, fuse_kernels=fuse_kernels).to(memory_format=torch.channels_last)
    x = image.contiguous(memory_format=torch.channels_last)
    assert max_difference(reference, fast, x) < TOLERANCE


@pytest.mark.parametrize('fuse_kernels', EXECUTION_PATHS)
def test_multiscale_every_scale(image, fuse_kernels):
    reference = randomised(MultiScaleLESRCNN(scales=(2, 3, 4)))
    fast = FastLESRCNN(reference, fuse_kernels=fuse_kernels)
    for scale in (2, 3, 4):
        assert max_difference(reference, fast, image, scale=scale) < TOLERANCE
    assert max_difference(reference, fast, image) < TOLERANCE  # default scale


@pytest.mark.parametrize('fuse_kernels', EXECUTION_PATHS)
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_dual_kernel(image, scale, fuse_kernels):
    reference = randomised(DualKernelLESRCNN(scale))
    assert max_difference(reference, FastLESRCNN(reference, fuse_kernels=fuse_kernels), image) < TOLERANCE


def test_x8_two_doubled_bias_stages(image):
    reference = randomised(LESRCNN(8))
    assert max_difference(reference, FastLESRCNN(reference), image) < TOLERANCE


def test_reference_model_and_input_untouched(image):
    reference = randomised(LESRCNN(2))
    state_before = {k: v.clone() for k, v in reference.state_dict().items()}
    image_before = image.clone()
    FastLESRCNN(reference)(image)
    assert all(torch.equal(state_before[k], v) for k, v in reference.state_dict().items())
    assert torch.equal(image, image_before)


def test_official_weights(official_weights):
    from lesrcnn_plugin.checkpoint import load_model
    model = load_model(official_weights(2))
    x = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(2))
    assert max_difference(model, FastLESRCNN(model), x) < TOLERANCE


def test_bfloat16_close_to_float32(image):
    reference = randomised(LESRCNN(2))
    fast = FastLESRCNN(reference).to(torch.bfloat16)
    with torch.no_grad():
        expected = reference(image)
        actual = fast(image.to(torch.bfloat16)).float()
    # bfloat16 keeps 8 significant bits: a loose bound, but far below a wrong computation's error.
    assert (actual - expected).abs().max().item() < 0.1


def test_rejects_foreign_module_and_unknown_scale(image):
    with pytest.raises(TypeError):
        FastLESRCNN(torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(ValueError, match='scales'):
        FastLESRCNN(randomised(LESRCNN(2)))(image, scale=3)


@pytest.mark.skipif(not fused_kernels_available(), reason='this PyTorch build has no oneDNN fused convolutions')
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('network', [LESRCNN(2), LESRCNN(3), DualKernelLESRCNN(4), LESRCNN(2, variant='ieeb_rb')],
                         ids=['x2', 'x3', 'dual_kernel_x4', 'ieeb_rb'])
def test_irb_strips_are_exact(monkeypatch, image, network, memory_format):
    """Strips of 2 rows (far smaller than any real strip) exercise the halo at every boundary."""
    from lesrcnn_plugin.archs import fast as fast_module

    reference = randomised(network)
    fast = FastLESRCNN(reference, fuse_kernels=True).to(memory_format=memory_format)
    x = image.contiguous(memory_format=memory_format)
    with torch.no_grad():
        whole = fast(x)
        monkeypatch.setattr(fast_module, '_STRIP_PIXELS', 2 * x.shape[-1] * network.scales[0] ** 2)
        strips = fast(x)
    assert torch.equal(strips, whole)
    assert strips.is_contiguous(memory_format=memory_format)
    assert max_difference(reference, fast, x) < TOLERANCE
