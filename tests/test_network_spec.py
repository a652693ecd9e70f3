"""A network added in two files, with no other file touched.

The toy ``ShallowLESRCNN`` (LESRCNN with four IEEB stages instead of eight, x2 or x3 only, its scale
argument named ``scale``) needs exactly:

1. its module, ``toy_lesrcnn_arch.py``: the ``nn.Module`` class;
2. its spec, ``toy_lesrcnn_spec.py``: ``SPEC = NetworkSpec(...)`` (scale argument and scales,
   distinctive keys, hyper-parameters read from weights, key map to the authors' layout, fast path,
   receptive field), registered with ``lesrcnn_plugin.archs.register_network``.

Both are written into a temporary folder and imported. The tests then show the toy built by name,
saved and loaded in every format, converted, counted, detected by spandrel and run through the
inference API, each through the package's public functions.
"""
from __future__ import annotations

import importlib
import math
import sys
import textwrap

import numpy as np
import pytest
import torch

from lesrcnn_plugin.archs import ARCHS, build_arch, spec_for, unregister_network
from lesrcnn_plugin.checkpoint import FORMATS, detect_format, load_model, read_checkpoint, save_checkpoint
from lesrcnn_plugin.cli import convert_checkpoint
from lesrcnn_plugin.complexity import count_complexity, input_size
from lesrcnn_plugin.errors import ConfigError
from lesrcnn_plugin.inference import prepare_network, receptive_field_margin, upscale_image, upscale_tensor
from lesrcnn_plugin.networks import resolve_network

TOY_MODULE = '''
from lesrcnn_plugin.archs.blocks import LESRCNNBody


class ShallowLESRCNN(LESRCNNBody):
    """LESRCNN with four IEEB stages (9 layers) instead of eight, 16 channels wide."""

    def __init__(self, scale: int = 2, num_feat: int = 16) -> None:
        super().__init__(scales=(scale,), num_feat=num_feat, num_stages=4)
'''

TOY_SPEC = '''
from lesrcnn_plugin.archs import NetworkSpec, register_network
from lesrcnn_plugin.archs.family import (authors_key_map, plain_keys, read_scales, read_width,
                                         receptive_field_margin)
from lesrcnn_plugin.archs.fast import FastLESRCNN

from toy_lesrcnn_arch import ShallowLESRCNN


def read_arguments(state, variant=None):
    return {'scale': read_scales(state)[0], **read_width(state, default=16)}


SPEC = register_network(NetworkSpec(
    ShallowLESRCNN, scale_argument='scale', scales=(2, 3),
    detect=plain_keys(num_stages=4),
    read_arguments=read_arguments,
    key_maps={'official': authors_key_map(num_stages=4)},  # conv1..conv9, conv9_1..conv9_4, conv10
    fast_path=FastLESRCNN, receptive_field=receptive_field_margin))
'''

NAME = 'ShallowLESRCNN'


@pytest.fixture(scope='module', autouse=True)
def toy_network(tmp_path_factory):
    """Write the two files, import the spec (which registers the network); unregister afterwards."""
    folder = tmp_path_factory.mktemp('toy_network')
    (folder / 'toy_lesrcnn_arch.py').write_text(textwrap.dedent(TOY_MODULE))
    (folder / 'toy_lesrcnn_spec.py').write_text(textwrap.dedent(TOY_SPEC))
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module('toy_lesrcnn_spec').SPEC
    finally:
        unregister_network(NAME)
        sys.path.remove(str(folder))
        for module in ('toy_lesrcnn_arch', 'toy_lesrcnn_spec'):
            sys.modules.pop(module, None)


def with_weights(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights unlike any initialisation (the mean shifts too), small enough to stay finite."""
    generator = torch.Generator().manual_seed(seed)
    model.load_state_dict({k: 0.05 * torch.randn(v.shape, generator=generator) for k, v in model.state_dict().items()})
    return model.eval()


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_built_by_name(toy_network):
    assert ARCHS[NAME] is toy_network.cls
    model = build_arch(NAME, scale=3)
    assert type(model) is toy_network.cls and model.scales == (3,)
    assert len(model.information_extraction.stages) == 4
    resolved = resolve_network(NAME, scale=3)  # the spec names the scale argument: scale=3
    assert resolved.is_family and resolved.scale == 3 and resolved.kwargs == {'scale': 3}
    with pytest.raises(ConfigError, match='unsupported scale 4; choose one of \\(2, 3\\)'):
        build_arch(NAME, scale=4)


@pytest.mark.parametrize('fmt', FORMATS)
def test_saved_and_loaded_in_every_format(tmp_path, fmt):
    model = with_weights(build_arch(NAME, scale=3))
    path = tmp_path / f'{fmt}.pth'
    save_checkpoint(model.state_dict(), path, fmt)
    assert detect_format(read_checkpoint(path)) == fmt
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.default_scale == 3
    assert_same_state(loaded.state_dict(), model.state_dict())


def test_authors_layout_follows_the_spec_key_map(tmp_path):
    path = tmp_path / 'official.pth'
    save_checkpoint(build_arch(NAME).state_dict(), path, 'official')
    keys = set(read_checkpoint(path))
    assert {'conv1.0.weight', 'conv9.0.weight', 'conv9_4.0.weight', 'conv10.0.weight',
            'upsample.up.body.0.weight', 'sub_mean.shifter.bias'} <= keys
    assert 'conv11.0.weight' not in keys and 'conv18.0.weight' not in keys


def test_converted_by_the_api_and_the_command(tmp_path):
    model = with_weights(build_arch(NAME, scale=2, num_feat=8))
    source = tmp_path / 'net_g.pth'
    save_checkpoint(model.state_dict(), source, 'basicsr')
    summary = convert_checkpoint.convert(str(source), str(tmp_path / 'official.pth'), 'official')
    assert f'(basicsr, {NAME})' in summary
    command = [str(tmp_path / 'official.pth'), str(tmp_path / 'mmagic.pth'), '--to', 'mmagic']
    assert convert_checkpoint.main(command) == 0  # lesrcnn-convert
    assert detect_format(read_checkpoint(tmp_path / 'mmagic.pth')) == 'mmagic'
    assert_same_state(load_model(tmp_path / 'mmagic.pth').state_dict(), model.state_dict())


def test_counted():
    """Parameters and MACs equal the closed form of four stages at width 16, x2, on an 8x6 input."""
    width, lr, hr = 16, 8 * 6, 16 * 12
    report = count_complexity(build_arch(NAME, scale=2), input_size(2, lr=(8, 6)), network=NAME)
    assert report.total.params == sum(p.numel() for p in build_arch(NAME).parameters())
    upsampler = width * 4 * width * 9
    expected = (3 * 3 * lr + 3 * width * 9 * lr                      # mean shift in, shallow layer
                + 4 * (width * width * 9 + width * width) * lr       # four (3x3, 1x1) stages
                + 2 * upsampler * lr                                  # the RB's upsampler, run twice
                + 4 * width * width * 9 * hr + width * 3 * 9 * hr    # IRB
                + 3 * 3 * hr)                                         # mean shift out
    assert report.total.macs == expected
    assert [block.name for block in report.blocks] == ['mean shifts', 'IEEB', 'RB', 'IRB']


@pytest.mark.parametrize('layout', ['plain', 'official', 'mmagic'])
def test_detected_by_spandrel(tmp_path, layout):
    pytest.importorskip('spandrel', reason='the spandrel extra is not installed (pip install -e .[spandrel])')
    from spandrel import ModelLoader

    import lesrcnn_plugin.spandrel  # noqa: F401  (registers the family, the toy included: detection reads the specs)

    model = with_weights(build_arch(NAME, scale=2))
    path = tmp_path / 'toy.pth'
    save_checkpoint(model.state_dict(), path, layout)
    descriptor = ModelLoader().load_from_state_dict(read_checkpoint(path))
    assert descriptor.architecture.id == 'LESRCNN' and type(descriptor.model) is type(model)
    assert descriptor.scale == 2
    x = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(descriptor.model(x), model(x))


def test_run_through_upscale():
    model = with_weights(build_arch(NAME, scale=2))
    # 1 shallow + 4 extraction 3x3 layers + 1 upsampler conv + ceil(5 HR layers / 2)
    assert receptive_field_margin(model) == 1 + 4 + 1 + math.ceil(5 / 2)
    fast = prepare_network(model)  # the spec's fast path
    assert type(fast) is not type(model) and receptive_field_margin(fast) == receptive_field_margin(model)
    x = torch.rand(1, 3, 21, 17, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = model(x)
    untiled = upscale_tensor(fast, x)
    tiled = upscale_tensor(fast, x, tile=6)  # overlap: the spec's receptive field
    assert (untiled - reference).abs().max() < 1e-5
    assert (tiled - untiled).abs().max() < 1e-5
    image = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    out = upscale_image(fast, image)
    assert out.shape == (18, 22, 3) and out.dtype == np.uint8


def test_unregistered_network_is_gone_from_the_registry():
    spec = spec_for(NAME)
    unregister_network(NAME)
    try:
        assert NAME not in ARCHS
        with pytest.raises(ConfigError, match='unknown network type'):
            build_arch(NAME)
    finally:
        from lesrcnn_plugin.archs import register_network
        register_network(spec)
