"""Checkpoint formats: detection, strict key map in both directions, lossless round trips, errors."""
from __future__ import annotations

import pytest
import torch

from lesrcnn_plugin.archs import LESRCNN, MultiScaleLESRCNN, DualKernelLESRCNN
from lesrcnn_plugin.checkpoint import (CheckpointError, detect_format, infer_arch, load_model, load_strict,
                                       official_scale, official_to_plugin, plugin_to_official, read_checkpoint,
                                       save_checkpoint, to_plugin_state)
from lesrcnn_plugin.cli.convert_checkpoint import main as convert_main


def random_state(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=generator) for k, v in model.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_official_key_names_round_trip(scale):
    state = random_state(LESRCNN(scale))
    official = plugin_to_official(state)
    assert 'conv1.0.weight' in official and 'conv17_4.0.weight' in official and 'conv18.0.weight' in official
    assert 'upsample.up.body.0.bias' in official and 'sub_mean.shifter.bias' in official
    assert len(official) == len(state)
    assert official_scale(official) == scale
    assert_same_state(official_to_plugin(official, scale), state)


def test_official_layer_order():
    """conv2k is the k-th extraction layer (3x3), conv2k+1 the k-th fusing layer (1x1)."""
    official = plugin_to_official(LESRCNN(2).state_dict())
    assert official['conv2.0.weight'].shape[-1] == 3 and official['conv3.0.weight'].shape[-1] == 1
    assert official['conv16.0.weight'].shape[-1] == 3 and official['conv17.0.weight'].shape[-1] == 1
    assert official['conv1.0.weight'].shape[1] == 3 and official['conv18.0.weight'].shape[0] == 3


def test_multiscale_official_names():
    state = random_state(MultiScaleLESRCNN())
    official = plugin_to_official(state)
    assert {'upsample.up2.body.0.weight', 'upsample.up3.body.0.weight', 'upsample.up4.body.2.weight'} <= set(official)
    assert_same_state(official_to_plugin(official), state)


def test_dual_kernel_has_no_official_layout():
    with pytest.raises(CheckpointError, match='no counterpart'):
        plugin_to_official(DualKernelLESRCNN(2).state_dict())


ROUND_TRIP_CASES = [(name, model, fmt)
                    for name, model in [('lesrcnn', LESRCNN(3)), ('multiscale', MultiScaleLESRCNN()),
                                        ('dual_kernel', DualKernelLESRCNN(2)), ('sn', LESRCNN(2, variant='sn'))]
                    for fmt in ('official', 'basicsr', 'mmagic', 'plain')
                    # DualKernelLESRCNN has no official layout: test_dual_kernel_has_no_official_layout
                    if not (name == 'dual_kernel' and fmt == 'official')]


@pytest.mark.parametrize('name, model, fmt', ROUND_TRIP_CASES, ids=[f'{n}-{f}' for n, _, f in ROUND_TRIP_CASES])
def test_save_detect_load_round_trip_is_lossless(tmp_path, name, model, fmt):
    state = random_state(model)
    path = tmp_path / f'{fmt}.pth'
    save_checkpoint(state, path, fmt, meta={'note': 'test'})
    loaded = read_checkpoint(path)
    assert detect_format(loaded) == fmt
    assert_same_state(to_plugin_state(loaded), state)
    rebuilt = load_model(path)
    assert type(rebuilt) is type(model)
    assert_same_state(rebuilt.state_dict(), state)
    assert not list(tmp_path.glob('*.tmp')), 'a temporary file was left behind'


def test_basicsr_prefers_ema_weights():
    ema, plain = random_state(LESRCNN(2), 1), random_state(LESRCNN(2), 2)
    assert_same_state(to_plugin_state({'params': plain, 'params_ema': ema}), ema)


def test_infer_arch_reads_scale_and_variant():
    assert infer_arch(LESRCNN(4).state_dict()) == ('LESRCNN', {'upscale': 4, 'variant': 'full'})
    assert infer_arch(LESRCNN(2, variant='sn').state_dict())[1]['variant'] == 'sn'
    name, kwargs = infer_arch(MultiScaleLESRCNN(scales=(2, 4)).state_dict())
    assert name == 'MultiScaleLESRCNN' and kwargs['scales'] == [2, 4]
    with pytest.raises(CheckpointError, match='variant'):
        infer_arch(LESRCNN(2, variant='hn').state_dict())


def test_infer_arch_reads_width(tmp_path):
    assert infer_arch(LESRCNN(3, num_feat=16).state_dict()) == ('LESRCNN', {'upscale': 3, 'variant': 'full', 'num_feat': 16})
    path = tmp_path / 'narrow.pth'
    save_checkpoint(random_state(DualKernelLESRCNN(2, num_feat=8)), path, 'basicsr')
    assert load_model(path).information_extraction.shallow.out_channels == 8


def test_explicit_class_keeps_the_sizes_of_the_weights(tmp_path):
    """A single-scale x3 LESRCNN of width 16, loaded as MultiScaleLESRCNN, keeps scale 3 and width 16."""
    path = tmp_path / 'x3.pth'
    save_checkpoint(random_state(LESRCNN(3, num_feat=16)), path, 'basicsr')
    model = load_model(path, arch='MultiScaleLESRCNN')
    assert isinstance(model, MultiScaleLESRCNN)
    assert model.scales == (3,) and model.default_scale == 3
    assert model.information_extraction.shallow.out_channels == 16


def test_missing_key_is_named():
    model = LESRCNN(2)
    state = model.state_dict()
    del state['refinement.convs.2.weight']
    with pytest.raises(CheckpointError, match=r"missing key 'refinement\.convs\.2\.weight'"):
        load_strict(model, state)


def test_extra_key_is_named():
    model = LESRCNN(2)
    state = dict(model.state_dict(), **{'refinement.convs.9.weight': torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected key 'refinement\.convs\.9\.weight'"):
        load_strict(model, state)


def test_misshaped_key_is_named():
    model = LESRCNN(2)
    state = model.state_dict()
    state['information_extraction.shallow.weight'] = torch.zeros(64, 3, 5, 5)
    with pytest.raises(CheckpointError, match=r'mis-shaped key information_extraction\.shallow\.weight'):
        load_strict(model, state)


def test_unknown_official_key_is_named():
    official = plugin_to_official(LESRCNN(2).state_dict())
    official['conv19.0.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointError, match='conv19'):
        official_to_plugin(official, 2)


def test_wrong_scale_for_official_weights_is_named(tmp_path):
    path = tmp_path / 'x2.pth'
    save_checkpoint(LESRCNN(2).state_dict(), path, 'official')
    with pytest.raises(CheckpointError, match=r"x2\.pth: weights do not fit LESRCNN: missing key 'reconstruction\.upsamplers\.x3\.0\.bias'"):
        load_model(path, arch='LESRCNN', scale=3)


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / 'broken.pth'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='broken.pth'):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match='no such checkpoint'):
        read_checkpoint(tmp_path / 'absent.pth')


def test_cli_converts_and_refuses_bad_input(tmp_path, capsys):
    source = tmp_path / 'official.pth'
    save_checkpoint(random_state(LESRCNN(4)), source, 'official')
    for fmt in ('basicsr', 'mmagic', 'plain', 'official'):
        out = tmp_path / f'out_{fmt}.pth'
        assert convert_main([str(source), str(out), '--to', fmt]) == 0
        assert detect_format(read_checkpoint(out)) == fmt
    assert_same_state(read_checkpoint(tmp_path / 'out_official.pth'), read_checkpoint(source))

    broken = plugin_to_official(LESRCNN(4).state_dict())
    del broken['conv7.0.weight']
    torch.save(broken, tmp_path / 'broken.pth')
    assert convert_main([str(tmp_path / 'broken.pth'), str(tmp_path / 'never.pth'), '--to', 'basicsr']) == 1
    assert 'information_extraction.stages.2.fuse.weight' in capsys.readouterr().err
    assert not (tmp_path / 'never.pth').exists()
