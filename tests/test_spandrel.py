"""spandrel integration: registration, loading every network and file format, tight detection, the
authors' weights reproducing the authors' outputs through ``spandrel.ModelLoader``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip('spandrel', reason='the spandrel extra is not installed (pip install -e .[spandrel])')

from spandrel import MAIN_REGISTRY, ArchRegistry, ModelLoader, ModelTiling  # noqa: E402

import lesrcnn_plugin.spandrel as lesrcnn_spandrel  # noqa: E402  (registers LESRCNN)
from conftest import shared_path  # noqa: E402
from lesrcnn_plugin.archs import DualKernelLESRCNN, LESRCNN, MultiScaleLESRCNN  # noqa: E402
from lesrcnn_plugin.checkpoint import CheckpointError, plugin_to_official, save_checkpoint  # noqa: E402


def random_state(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights unlike any initialisation, small enough that 20 layers stay finite."""
    generator = torch.Generator().manual_seed(seed)
    return {k: 0.05 * torch.randn(v.shape, generator=generator) for k, v in model.state_dict().items()}


def with_weights(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    model.load_state_dict(random_state(model, seed))
    return model.eval()


# (id, network). Odd widths check the width is read from the weights, not assumed.
NETWORKS = [
    ('x2', lambda: LESRCNN(2)),
    ('x3', lambda: LESRCNN(3)),
    ('x4', lambda: LESRCNN(4)),
    ('x2-sn', lambda: LESRCNN(2, variant='sn')),
    ('x3-32nf', lambda: LESRCNN(3, num_feat=32)),
    ('multiscale', lambda: MultiScaleLESRCNN()),
    ('dual-kernel-x2', lambda: DualKernelLESRCNN(2)),
    ('dual-kernel-x3', lambda: DualKernelLESRCNN(3)),
    ('dual-kernel-x4', lambda: DualKernelLESRCNN(4)),
]
# DualKernelLESRCNN has no counterpart among the authors' layouts.
LAYOUT_CASES = [(name, make, layout) for name, make in NETWORKS for layout in ('plain', 'official')
                if not (name.startswith('dual-kernel') and layout == 'official')]


def layout_state(model: torch.nn.Module, layout: str) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    return plugin_to_official(state) if layout == 'official' else state


def assert_same_network(descriptor, net: torch.nn.Module) -> None:
    """The descriptor's network is ``net``: same class, same output at every scale it has."""
    assert descriptor.architecture.id == 'LESRCNN'
    assert type(descriptor.model) is type(net)
    x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(descriptor.model(x), net(x), rtol=0, atol=1e-6)
        for scale in net.scales:
            torch.testing.assert_close(descriptor.model(x, scale=scale), net(x, scale=scale), rtol=0, atol=1e-6)


def test_registered_once():
    assert MAIN_REGISTRY['LESRCNN'] is lesrcnn_spandrel.LESRCNN_SUPPORT
    before = MAIN_REGISTRY.architectures('detection')
    assert lesrcnn_spandrel.install() == []
    assert MAIN_REGISTRY.architectures('detection') == before

    registry = ArchRegistry()
    assert lesrcnn_spandrel.install(registry) == [lesrcnn_spandrel.LESRCNN_SUPPORT]
    assert lesrcnn_spandrel.install(registry) == [] and len(registry) == 1


def test_registering_keeps_spandrel_detection_order():
    """LESRCNN is tried last; every other architecture keeps its place."""
    others = [arch for arch in MAIN_REGISTRY.architectures('insertion') if arch.architecture.id != 'LESRCNN']
    without = ArchRegistry()
    without.add(*others)
    detection = MAIN_REGISTRY.architectures('detection')
    assert detection[:-1] == without.architectures('detection')
    assert detection[-1] is lesrcnn_spandrel.LESRCNN_SUPPORT


@pytest.mark.parametrize('name, make, layout', LAYOUT_CASES, ids=[f'{n}-{layout}' for n, _, layout in LAYOUT_CASES])
def test_load_from_state_dict(name, make, layout):
    net = with_weights(make())
    descriptor = ModelLoader().load_from_state_dict(layout_state(net, layout))
    assert_same_network(descriptor, net)

    assert descriptor.scale == net.default_scale == net.scales[0]
    assert descriptor.purpose == 'SR'
    assert (descriptor.input_channels, descriptor.output_channels) == (3, 3)
    assert descriptor.supports_half and descriptor.supports_bfloat16
    assert descriptor.tiling is ModelTiling.SUPPORTED
    assert descriptor.size_requirements.none
    assert descriptor.tags[:2] == [f'{net.information_extraction.shallow.out_channels}nf', net.variant]
    assert ('multi-scale' in descriptor.tags) == isinstance(net, MultiScaleLESRCNN)
    assert ('dual-kernel' in descriptor.tags) == isinstance(net, DualKernelLESRCNN)


def test_call_api_clamps_and_takes_any_size():
    """spandrel's ``descriptor(image)``: output clamped to [0, 1]; no padding needed, down to 1x1."""
    net = with_weights(LESRCNN(3))
    descriptor = ModelLoader().load_from_state_dict(net.state_dict())
    for height, width in [(1, 1), (5, 11)]:
        x = torch.rand(1, 3, height, width)
        with torch.no_grad():
            expected = net(x).clamp(0, 1)
        torch.testing.assert_close(descriptor(x), expected, rtol=0, atol=1e-6)


FILE_CASES = [(name, make, fmt) for name, make in [NETWORKS[1], NETWORKS[5], NETWORKS[6]]
              for fmt in ('plain', 'official', 'basicsr', 'mmagic')
              if not (name.startswith('dual-kernel') and fmt == 'official')]


@pytest.mark.parametrize('name, make, fmt', FILE_CASES, ids=[f'{n}-{f}' for n, _, f in FILE_CASES])
def test_load_from_file_every_format(tmp_path, name, make, fmt):
    """The files ``save_checkpoint`` writes (``lesrcnn-convert``'s output) load in spandrel."""
    net = with_weights(make())
    path = tmp_path / f'{name}.pth'
    save_checkpoint(net.state_dict(), path, fmt, meta={'note': 'test'})
    assert_same_network(ModelLoader().load_from_file(path), net)


def test_load_from_file_safetensors_and_ddp_prefix(tmp_path):
    from safetensors.torch import save_file

    net = with_weights(MultiScaleLESRCNN())
    path = tmp_path / 'lesrcnn_s.safetensors'
    save_file({f'module.{k}': v.contiguous() for k, v in net.state_dict().items()}, path)
    assert_same_network(ModelLoader().load_from_file(path), net)


def test_basicsr_ema_weights_preferred():
    ema, raw = with_weights(LESRCNN(2), seed=1), with_weights(LESRCNN(2), seed=2)
    descriptor = ModelLoader().load_from_state_dict({'params': raw.state_dict(), 'params_ema': ema.state_dict()})
    assert_same_network(descriptor, ema)


def test_ambiguous_ablation_is_claimed_but_refused():
    """ieeb_rb, ieeb and hn hold alike weights: spandrel cannot be told which forward pass to run."""
    state = LESRCNN(2, variant='ieeb').state_dict()
    assert lesrcnn_spandrel.LESRCNN_SUPPORT.detect(state)
    with pytest.raises(CheckpointError, match='variant'):
        ModelLoader().load_from_state_dict(state)


@pytest.mark.parametrize('name, make, layout', LAYOUT_CASES, ids=[f'{n}-{layout}' for n, _, layout in LAYOUT_CASES])
def test_no_other_architecture_claims_lesrcnn(name, make, layout):
    state = layout_state(make(), layout)
    claimed = [arch.architecture.id for arch in MAIN_REGISTRY.architectures('detection') if arch.detect(state)]
    assert claimed == ['LESRCNN']


def _spandrel_networks():
    """Small networks of architectures spandrel ships, built from spandrel's own classes."""
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.DAT import DAT
    from spandrel.architectures.DnCNN import DnCNN
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.OmniSR import OmniSR
    from spandrel.architectures.PLKSR import PLKSR
    from spandrel.architectures.RCAN import RCAN
    from spandrel.architectures.RealCUGAN import UpCunet2x
    from spandrel.architectures.SAFMN import SAFMN
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    return {
        'ESRGAN': lambda: ESRGAN(num_filters=16, num_blocks=1, scale=2),
        'SPAN': lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2),
        'SAFMN': lambda: SAFMN(dim=16, n_blocks=1, upscaling_factor=2),
        'RealCUGAN': lambda: UpCunet2x(in_channels=3, out_channels=3),
        'Compact': lambda: Compact(num_feat=16, num_conv=2, upscale=2),
        'DAT': lambda: DAT(embed_dim=12, depth=[1], num_heads=[2], split_size=[2, 4], upscale=2,
                           upsampler='pixelshuffle'),
        'SwinIR': lambda: SwinIR(embed_dim=12, depths=[1], num_heads=[2], window_size=4, upscale=2,
                                 upsampler='pixelshuffle'),
        # RCAN has EDSR-style sub_mean/add_mean mean shifts, the nearest names to LESRCNN's.
        'RCAN': lambda: RCAN(scale=2, n_resgroups=1, n_resblocks=1, n_feats=16, reduction=4),
        'OmniSR': lambda: OmniSR(num_feat=16, up_scale=2),
        'PLKSR': lambda: PLKSR(dim=16, n_blocks=2, upscaling_factor=2),
        'DnCNN': lambda: DnCNN(nc=16),
    }


@pytest.mark.parametrize('arch_id', list(_spandrel_networks()))
def test_detection_claims_no_spandrel_architecture(arch_id):
    state = _spandrel_networks()[arch_id]().state_dict()
    assert not lesrcnn_spandrel.LESRCNN_SUPPORT.detect(state)
    assert ModelLoader().load_from_state_dict(state).architecture.id == arch_id


# x2 in the quick set; x3 and x4 (the largest reference images) in make test
@pytest.mark.parametrize('scale', [2, pytest.param(3, marks=pytest.mark.slow), pytest.param(4, marks=pytest.mark.slow)])
def test_authors_weights_reproduce_authors_outputs(official_weights, scale):
    reference = np.load(shared_path('reference', 'lesrcnn_official_outputs.npz'))
    x = torch.from_numpy(reference[f'x{scale}_input'])
    expected = torch.from_numpy(reference[f'x{scale}_output'])

    descriptor = ModelLoader().load_from_file(official_weights(scale))
    assert descriptor.architecture.id == 'LESRCNN' and type(descriptor.model) is LESRCNN
    assert descriptor.scale == scale and descriptor.tags == ['64nf', 'full']
    with torch.no_grad():
        torch.testing.assert_close(descriptor.model(x), expected, rtol=0, atol=1e-5)
    # spandrel's call API clamps to [0, 1] (the x2 reference overshoots 1 by 2e-3 at one pixel).
    expected = expected.clamp(0, 1)
    torch.testing.assert_close(descriptor(x), expected, rtol=0, atol=1e-5)

    # Reduced precision on the CPU (measured: fp16 within 5e-3, bf16 within 2.5e-2 at worst).
    for dtype, worst, mean in [(torch.float16, 1e-2, 1e-3), (torch.bfloat16, 5e-2, 5e-3)]:
        output = descriptor.to(dtype)(x.to(dtype))
        assert output.dtype == dtype
        error = (output.float() - expected).abs()
        assert error.max() < worst and error.mean() < mean, (dtype, error.max().item(), error.mean().item())
    descriptor.float()
