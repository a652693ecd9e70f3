"""Complexity counts against a closed form written from the layer list, and against mmengine.analysis."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from lesrcnn_plugin.archs import LESRCNN, MultiScaleLESRCNN
from lesrcnn_plugin.cli import count_flops
from lesrcnn_plugin.complexity import count_complexity, input_size, parse_size

C = 64  # feature channels


def upsampler_layers(scale: int, lr_pixels: int) -> list[tuple[int, int, int, int]]:
    """(in, out, kernel, pixels at which the layer runs) of each sub-pixel conv, written from the paper."""
    if scale == 3:
        return [(C, 9 * C, 3, lr_pixels)]
    stages = {2: 1, 4: 2}[scale]
    return [(C, 4 * C, 3, lr_pixels * 4 ** stage) for stage in range(stages)]


def closed_form(scale: int, height: int, width: int) -> dict:
    """Counts of LESRCNN (full) from its layer list: (in, out, kernel, pixels, has_bias, calls)."""
    lr, hr = height * width, height * width * scale * scale
    layers = [(3, 3, 1, lr, True, 1), (3, C, 3, lr, False, 1)]                  # mean shift, IEEB conv1
    for _ in range(8):                                                         # IEEB 3x3 / 1x1 pairs
        layers += [(C, C, 3, lr, False, 1), (C, C, 1, lr, False, 1)]
    layers += [(i, o, k, p, True, 2) for i, o, k, p in upsampler_layers(scale, lr)]  # RB: used twice
    layers += [(C, C, 3, hr, False, 1)] * 4 + [(C, 3, 3, hr, False, 1), (3, 3, 1, hr, True, 1)]  # IRB, add_mean
    params = sum(i * o * k * k + (o if bias else 0) for i, o, k, _, bias, _ in layers)
    macs = sum(i * o * k * k * pixels * calls for i, o, k, pixels, _, calls in layers)
    activations = sum(o * pixels * calls for _, o, _, pixels, _, calls in layers)
    return {'params': params, 'macs': macs, 'activations': activations}


@pytest.mark.parametrize('scale', [2, 3, 4])
@pytest.mark.parametrize('lr_size', [(16, 16), (25, 40), (256, 256), (360, 640)])
def test_counts_equal_closed_form(scale, lr_size):
    report = count_complexity(LESRCNN(scale), input_size(scale, lr=lr_size))
    expected = closed_form(scale, *lr_size)
    assert report.total.params == expected['params']
    assert report.total.macs == expected['macs']
    assert report.total.flops == 2 * expected['macs']
    assert report.total.activations == expected['activations']
    assert report.size.hr == (lr_size[0] * scale, lr_size[1] * scale)


def test_released_parameter_totals_and_block_breakdown():
    totals = {scale: count_complexity(LESRCNN(scale), input_size(scale, lr=(8, 8))).total.params
              for scale in (2, 3, 4)}
    assert totals == {2: 626_328, 3: 810_968, 4: 774_040}
    blocks = {b.name: b for b in count_complexity(LESRCNN(2), input_size(2, lr=(8, 8))).blocks}
    assert {name: b.params for name, b in blocks.items()} == {
        'mean shifts': 24, 'IEEB': 329_408, 'RB': 147_712, 'IRB': 149_184}
    assert blocks['mean shifts'].trainable_params == 0
    assert blocks['RB'].conv_calls == 2  # one upsampler, two passes


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_agrees_with_mmengine_analysis(scale):
    analysis = pytest.importorskip('mmengine.analysis')
    model = LESRCNN(scale).eval()
    x = torch.rand(1, 3, 12, 20)
    report = count_complexity(model, input_size(scale, lr=(12, 20)))
    # mmengine (fvcore's convention) names multiply-accumulates "flops".
    info = analysis.get_model_complexity_info(model, inputs=(x,), show_table=False, show_arch=False)
    assert info['params'] == report.total.params
    assert info['flops'] == report.total.macs
    by_module = analysis.FlopAnalyzer(model, (x,)).by_module()
    blocks = {b.name: b.macs for b in report.blocks}
    assert by_module['information_extraction'] == blocks['IEEB']
    assert by_module['reconstruction'] == blocks['RB']
    assert by_module['refinement'] == blocks['IRB']
    assert by_module['subtract_mean'] + by_module['add_mean'] == blocks['mean shifts']


def test_multiscale_counts_the_chosen_upsampler_only():
    model = MultiScaleLESRCNN(scales=(2, 3, 4))
    for scale in (2, 3, 4):
        report = count_complexity(model, input_size(scale, lr=(16, 16)), scale=scale)
        assert report.total.macs == closed_form(scale, 16, 16)['macs']
        assert any('every scale' in note for note in report.notes)
    assert report.total.params == 626_328 + (810_968 - 478_616) + (774_040 - 478_616)


def test_sizes_and_presets():
    assert parse_size('720x1280') == (720, 1280)
    with pytest.raises(ValueError):
        parse_size('720')
    assert input_size(2, preset='ntire').lr == (256, 256)
    assert input_size(4, preset='720p').lr == (180, 320)
    cropped = input_size(3, preset='1024')
    assert cropped.lr == (341, 341) and cropped.hr == (1023, 1023) and 'modcropped' in cropped.label
    with pytest.raises(ValueError):
        input_size(2, preset='4k')


def test_cli_from_basicsr_options_writes_csv(tmp_path):
    options = tmp_path / 'train.yml'
    options.write_text('name: x\nnetwork_g:\n  type: LESRCNN\n  upscale: 3\n')
    output = tmp_path / 'counts.csv'
    assert count_flops.main(['-opt', str(options), '--lr-size', '10x12', '--format', 'csv',
                             '--output', str(output)]) == 0
    rows = list(csv.DictReader(output.open()))
    total = next(row for row in rows if row['block'] == 'total')
    assert int(total['macs']) == closed_form(3, 10, 12)['macs']
    assert int(total['flops']) == 2 * int(total['macs'])


def test_cli_from_mmagic_config_writes_json(tmp_path):
    pytest.importorskip('mmengine')
    config = tmp_path / 'config.py'
    config.write_text("model = dict(type='BaseEditModel', generator=dict(type='LESRCNN', upscale=4))\n")
    output = tmp_path / 'counts.json'
    assert count_flops.main(['--config', str(config), '--hr-size', '64x48', '--format', 'json',
                             '--output', str(output)]) == 0
    (report,) = json.loads(output.read_text())
    assert report['scale'] == 4 and report['size']['lr'] == [16, 12]
    assert report['total']['macs'] == closed_form(4, 16, 12)['macs']
    assert any('twice' in note for note in report['notes'])


def test_cli_markdown_states_conventions(capsys):
    assert count_flops.main(['--arch', 'LESRCNN', '--scale', '2', '--lr-size', '8x8']) == 0
    text = capsys.readouterr().out
    assert 'FLOPs (2 x MACs)' in text and 'runs twice' in text and '626,328' in text


def test_cli_user_errors_exit_non_zero(tmp_path, capsys):
    assert count_flops.main(['--lr-size', 'big']) == 1
    bad = tmp_path / 'bad.yml'
    bad.write_text('network_g:\n  type: NoSuchNet\n')
    assert count_flops.main(['-opt', str(bad)]) == 1
    assert 'NoSuchNet' in capsys.readouterr().err


def test_paper_table9_beside_the_released_networks():
    """docs/complexity.md: the peers' Table 9 rows are params x 128^2, and the released networks' MACs at a
    128x128 output are the figures printed beside them (none reproduces the paper's 3.08G)."""
    table9 = {'VDSR': (665e3, 10.90e9), 'DRCN': (1774e3, 29.07e9), 'MemNet': (677e3, 11.09e9)}
    for params, flops in table9.values():
        assert round(params * 128 ** 2 / 1e7) == round(flops / 1e7)
    assert round(556e3 * 128 ** 2 / 1e7) != round(9.18e9 / 1e7)  # DnCNN's row is the one that does not
    expected = {2: (626_328, '5.00'), 3: (810_968, '4.12'), 4: (774_040, '4.29')}
    for scale, (params, gmacs) in expected.items():
        report = count_complexity(LESRCNN(scale), input_size(scale, hr=(128, 128)))
        assert (report.total.params, f'{report.total.macs / 1e9:.2f}') == (params, gmacs)
    blocks = {block.name: block.macs for block in count_complexity(LESRCNN(2), input_size(2, hr=(128, 128))).blocks}
    assert [f'{blocks[name] / 1e9:.2f}' for name in ('IEEB', 'RB', 'IRB')] == ['1.35', '1.21', '2.44']
    # The conjectured 516K network (three 64->64 3x3 layers fewer) at IRB (HR) or IEEB (LR) resolution.
    layer = 64 * 64 * 9
    x2 = count_complexity(LESRCNN(2), input_size(2, hr=(128, 128))).total.macs
    assert f'{(x2 - 3 * layer * 128 ** 2) / 1e9:.2f}' == '3.19'
    assert f'{(x2 - 3 * layer * 64 ** 2) / 1e9:.2f}' == '4.55'
    assert f'{(x2 - blocks["RB"] // 2) / 1e9:.2f}' == '4.40'
