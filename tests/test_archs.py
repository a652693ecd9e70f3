"""The LESRCNN family: parameter counts, shapes, and parity with the authors' released outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import shared_path
from lesrcnn_plugin.archs import ARCHS, VARIANTS, DualKernelLESRCNN, LESRCNN, MultiScaleLESRCNN, build_arch
from lesrcnn_plugin.checkpoint import load_model
from lesrcnn_plugin.errors import ConfigError
from lesrcnn_plugin.cli.convert_checkpoint import main as convert_main


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('scale, expected', [(2, 626_328), (3, 810_968), (4, 774_040)])
def test_lesrcnn_parameter_count_matches_released_weights(scale, expected):
    model = LESRCNN(upscale=scale)
    assert count(model) == expected
    # Only the two frozen mean shifts (2 x 12 parameters) are excluded from training.
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected - 24


def test_dual_kernel_parameter_count():
    assert count(DualKernelLESRCNN(upscale=2)) == 855_704


def test_multiscale_shares_everything_but_the_upsamplers():
    shared = count(LESRCNN(2)) - count(LESRCNN(2).reconstruction)
    upsamplers = sum(count(LESRCNN(k).reconstruction) for k in (2, 3, 4))
    assert count(MultiScaleLESRCNN(scales=(2, 3, 4))) == shared + upsamplers


def test_dual_kernel_layers_are_the_authors_conv4_to_conv16():
    stages = DualKernelLESRCNN(2).information_extraction.stages
    assert isinstance(stages[0].extract, torch.nn.Conv2d)  # conv2 stays 3x3
    for stage in stages[1:]:
        assert stage.extract.branch3x3.kernel_size == (3, 3)
        assert stage.extract.branch5x5.kernel_size == (5, 5)
        assert stage.extract.branch3x3.out_channels == stage.extract.branch5x5.out_channels == 32


@pytest.mark.parametrize('variant', sorted(VARIANTS))
@pytest.mark.parametrize('scale', [2, 3, 4])
def test_output_shape_every_variant_and_scale(variant, scale):
    model = LESRCNN(upscale=scale, num_feat=8, variant=variant).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 7, 11))
    assert out.shape == (2, 3, 7 * scale, 11 * scale)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_dual_kernel_output_shape(scale):
    with torch.no_grad():
        out = DualKernelLESRCNN(upscale=scale, num_feat=8)(torch.rand(1, 3, 9, 5))
    assert out.shape == (1, 3, 9 * scale, 5 * scale)


def test_multiscale_scale_per_call_and_default():
    model = MultiScaleLESRCNN(scales=(2, 3, 4), default_scale=3, num_feat=8).eval()
    x = torch.rand(1, 3, 5, 13)
    with torch.no_grad():
        assert model(x).shape == (1, 3, 15, 39)
        for scale in (2, 3, 4):
            assert model(x, scale=scale).shape == (1, 3, 5 * scale, 13 * scale)
    with pytest.raises(ValueError, match='scales'):
        model(x, scale=8)
    with pytest.raises(ValueError, match='default_scale'):
        MultiScaleLESRCNN(scales=(2, 4), default_scale=3)


def test_ablations_differ_in_the_way_table_1_describes():
    sn, hn, ieeb, ieeb_rb, full = (LESRCNN(2, variant=v) for v in ('sn', 'hn', 'ieeb', 'ieeb_rb', 'full'))
    assert sn.information_extraction.stages[0].fuse.kernel_size == (3, 3)
    assert hn.information_extraction.stages[0].fuse.kernel_size == (1, 1)
    assert not hn.information_extraction.stages[0].residual and ieeb.information_extraction.stages[0].residual
    assert not ieeb.reconstruction.fuse_shallow and ieeb_rb.reconstruction.fuse_shallow
    assert len(ieeb_rb.refinement.convs) == 0 and len(full.refinement.convs) == 4


def test_residual_sums_change_the_output():
    """The same weights with and without cumulative sums must compute different functions."""
    torch.manual_seed(0)
    hn, ieeb = LESRCNN(2, num_feat=8, variant='hn'), LESRCNN(2, num_feat=8, variant='ieeb')
    ieeb.load_state_dict(hn.state_dict())
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(hn(x), ieeb(x))


def test_unknown_names_raise():
    with pytest.raises(ValueError, match='variant'):
        LESRCNN(2, variant='nope')
    with pytest.raises(ValueError, match='scale'):
        LESRCNN(upscale=5)
    with pytest.raises(ConfigError, match='unknown network'):
        build_arch('EDSR')
    assert set(ARCHS) == {'LESRCNN', 'MultiScaleLESRCNN', 'DualKernelLESRCNN'}


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('fmt', ['basicsr', 'mmagic'])
def test_converted_official_weights_reproduce_reference_outputs(tmp_path, official_weights, scale, fmt):
    reference = np.load(shared_path('reference', 'lesrcnn_official_outputs.npz'))
    converted = tmp_path / f'lesrcnn_x{scale}_{fmt}.pth'
    assert convert_main([str(official_weights(scale)), str(converted), '--to', fmt]) == 0

    model = LESRCNN(upscale=scale).eval()
    state = load_model(converted).state_dict()  # format auto-detected, loaded strictly
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = model(torch.from_numpy(reference[f'x{scale}_input'])).numpy()
    assert out.shape == reference[f'x{scale}_output'].shape
    assert np.abs(out - reference[f'x{scale}_output']).max() <= 1e-5


def contract_networks():
    """Every class, every variant, every scale, and a multi-scale network whose default is not its first."""
    yield from (LESRCNN(scale, num_feat=8, variant=variant) for scale in (2, 3, 4, 8) for variant in VARIANTS)
    yield from (DualKernelLESRCNN(scale, num_feat=8) for scale in (2, 3, 4))
    yield MultiScaleLESRCNN((2, 3, 4), default_scale=3, num_feat=8)


def test_every_network_and_its_fast_path_follow_one_calling_contract():
    """``scales``, ``default_scale``, ``net(x)`` at the default and ``net(x, scale=k)`` for each k, the
    fast path equal to the reference: no caller needs to inspect a network to call it."""
    from lesrcnn_plugin.archs.fast import FastLESRCNN

    x = torch.rand(1, 3, 7, 5, generator=torch.Generator().manual_seed(0))
    for model in contract_networks():
        model.eval()
        fast = FastLESRCNN(model)
        assert isinstance(model.scales, tuple) and model.default_scale in model.scales
        assert (fast.scales, fast.default_scale) == (model.scales, model.default_scale)
        with torch.no_grad():
            for network in (model, fast):
                assert network(x).shape == (1, 3, 7 * model.default_scale, 5 * model.default_scale)
            for scale in model.scales:
                reference = model(x, scale=scale)
                assert reference.shape == (1, 3, 7 * scale, 5 * scale)
                assert (fast(x, scale=scale) - reference).abs().max() <= 1e-5
