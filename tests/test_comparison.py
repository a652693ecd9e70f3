"""Any SR network through lesrcnn-count-flops / lesrcnn-measure-runtime, checked against independent counts.

Each foreign network is counted by the tool, then again here without it: parameters from the
framework's own build, MACs from ``torch.utils.flop_counter.FlopCounterMode`` called directly on the
CPU, activations as the NTIRE ESR script counts them (forward hooks on ``nn.Conv2d`` and
``nn.ConvTranspose2d``). Sizes are tiny so that the tests run in seconds.
"""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lesrcnn_plugin.benchmark import CPU_CLOCK, time_networks
from lesrcnn_plugin.cli import count_flops, measure_runtime
from lesrcnn_plugin.complexity import TOP_LEVEL, count_complexity, input_size
from lesrcnn_plugin.contract import ForeignNetwork
from lesrcnn_plugin.errors import ConfigError
from lesrcnn_plugin.networks import resolve_network

#: A researcher's own networks, written into a module the tests import by module:callable.
HELPER_MODULE = '''
import torch
from torch import nn
from torch.nn import functional as F


class TinySR(nn.Module):
    """conv 3->8, ReLU, conv 8->3*s*s, pixel shuffle."""

    def __init__(self, scale=2, width=8):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.act = nn.ReLU()
        self.tail = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.tail(self.act(self.head(x))))


class NormSR(TinySR):
    """TinySR with a GroupNorm and a functional 1x1 convolution in its own forward."""

    def __init__(self, scale=2, width=8):
        super().__init__(scale, width)
        self.norm = nn.GroupNorm(2, width)
        self.mix = nn.Parameter(torch.randn(width, width, 1, 1))

    def forward(self, x):
        features = F.conv2d(self.norm(self.act(self.head(x))), self.mix)
        return self.shuffle(self.tail(features))


def make_tiny(scale=2):
    return TinySR(scale=scale)


def not_a_network():
    return 42
'''


@pytest.fixture
def helper_module(tmp_path, monkeypatch):
    """``my_sr_nets``, importable by name, and the path of its file."""
    path = tmp_path / 'my_sr_nets.py'
    path.write_text(HELPER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return path


def independent_counts(network: nn.Module, lr: tuple[int, int]) -> dict:
    """Params, MACs (FlopCounterMode on the CPU) and NTIRE activations (module hooks) of ``network(x)``."""
    activations, calls = [], []

    def record(_module, _inputs, output):
        activations.append(output.numel())
        calls.append(1)

    hooks = [module.register_forward_hook(record) for module in network.modules()
             if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            output = network.eval()(torch.rand(1, 3, *lr))
    finally:
        for hook in hooks:
            hook.remove()
    return {'params': sum(p.numel() for p in network.parameters()), 'macs': counter.get_total_flops() // 2,
            'activations': sum(activations), 'conv_calls': len(calls), 'output': tuple(output.shape)}


def run_count_flops(argv: list[str], tmp_path) -> dict:
    output = tmp_path / 'counts.json'
    assert count_flops.main([*argv, '--format', 'json', '--output', str(output)]) == 0
    (report,) = json.loads(output.read_text())
    return report


def assert_totals_match(report: dict, expected: dict) -> None:
    total = report['total']
    assert (total['params'], total['macs'], total['activations'], total['conv_calls']) == (
        expected['params'], expected['macs'], expected['activations'], expected['conv_calls'])
    assert total['flops'] == 2 * total['macs']
    for field in ('params', 'macs', 'activations', 'conv_calls'):  # the rows add up to the network
        assert sum(block[field] for block in report['blocks']) == total[field]


def test_basicsr_edsr_from_options_file(tmp_path):
    pytest.importorskip('lesrcnn_plugin.basicsr')
    from basicsr.archs import build_network

    network_g = {'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 16, 'num_block': 2, 'upscale': 4}
    options = tmp_path / 'train_EDSR_tiny_x4.yml'
    options.write_text('name: edsr_tiny\nmodel_type: SRModel\nscale: 4\nnetwork_g:\n'
                       + ''.join(f'  {key}: {value}\n' for key, value in network_g.items()))
    report = run_count_flops(['-opt', str(options), '--lr-size', '12x16'], tmp_path)

    expected = independent_counts(build_network(dict(network_g)), (12, 16))
    assert report['network'] == 'basicsr:EDSR' and report['scale'] == 4
    assert report['size']['hr'] == [48, 64] and expected['output'] == (1, 3, 48, 64)
    assert_totals_match(report, expected)
    assert [block['name'] for block in report['blocks']] == ['conv_first', 'body', 'conv_after_body', 'upsample',
                                                             'conv_last']


def test_mmagic_srcnn_from_config(tmp_path):
    pytest.importorskip('mmagic')
    from mmagic.registry import MODELS
    from mmagic.utils import register_all_modules

    config = tmp_path / 'srcnn_tiny_x2.py'
    config.write_text(textwrap.dedent('''\
        model = dict(type='BaseEditModel',
                     generator=dict(type='SRCNNNet', channels=(3, 16, 8, 3), kernel_sizes=(9, 1, 5),
                                    upscale_factor=2))
        '''))
    report = run_count_flops(['--config', str(config), '--lr-size', '10x12'], tmp_path)

    register_all_modules()
    generator = MODELS.build(dict(type='SRCNNNet', channels=(3, 16, 8, 3), kernel_sizes=(9, 1, 5), upscale_factor=2))
    expected = independent_counts(generator, (10, 12))
    assert report['network'] == 'mmagic:SRCNNNet' and report['scale'] == 2  # read from the network's output
    assert_totals_match(report, expected)
    # SRCNN runs at HR after a bicubic upsampling that neither counter counts.
    assert report['total']['macs'] == (3 * 16 * 81 + 16 * 8 + 8 * 3 * 25) * 20 * 24


def test_module_callable_network(tmp_path, helper_module):
    lr = (6, 10)
    by_module = run_count_flops(['--arch', 'my_sr_nets:TinySR', '--arch-args', '{"scale": 3}', '--lr-size', '6x10'],
                                tmp_path)
    by_file = run_count_flops(['--arch', f'{helper_module}:make_tiny', '--arch-args', '{"scale": 3}',
                               '--hr-size', '18x30'], tmp_path)
    pixels = math.prod(lr)
    closed_form = {'params': 3 * 8 * 9 + 8 + 8 * 27 * 9 + 27, 'macs': (3 * 8 * 9 + 8 * 27 * 9) * pixels,
                   'activations': (8 + 27) * pixels, 'conv_calls': 2}
    for report in (by_module, by_file):
        assert report['scale'] == 3
        assert_totals_match(report, closed_form)
        assert [block['name'] for block in report['blocks']] == ['head', 'tail']  # ReLU, shuffle: nothing counted
    assert by_module['network'] == 'my_sr_nets:TinySR'


def test_adapter_gives_the_calling_contract(helper_module):
    network = resolve_network('my_sr_nets:TinySR', {'scale': 4})
    assert isinstance(network.module, ForeignNetwork) and not network.is_family
    assert (network.module.scales, network.module.default_scale, network.scale) == ((4,), 4, 4)
    x = torch.rand(1, 3, 5, 7)
    assert network.module(x).shape == network.module(x, scale=4).shape == (1, 3, 20, 28)
    with pytest.raises(ConfigError, match='x4 only'):
        network.module(x, scale=2)
    with pytest.raises(ConfigError, match='upscales x4, not x2'):
        resolve_network('my_sr_nets:TinySR', {'scale': 4}, scale=2)
    with pytest.raises(ConfigError, match='not a torch.nn.Module'):
        resolve_network('my_sr_nets:not_a_network')
    with pytest.raises(ConfigError, match='no attribute'):
        resolve_network('my_sr_nets:Missing')


def test_top_level_row_and_mmengine_conventions(helper_module):
    pytest.importorskip('mmengine.analysis')
    from lesrcnn_plugin.complexity_crosscheck import cross_check

    network = resolve_network('my_sr_nets:NormSR')
    size = input_size(2, lr=(8, 8))
    report = count_complexity(network.module, size)
    rows = {block.name: block for block in report.blocks}
    # The functional 1x1 convolution of forward() and its parameter belong to no child.
    assert rows[TOP_LEVEL].params == 64 and rows[TOP_LEVEL].macs == 64 * 64 and rows[TOP_LEVEL].conv_calls == 1
    assert 'norm' in rows and rows['norm'].macs == 0  # a GroupNorm holds parameters but no counted work

    check = cross_check(network.module, size)
    assert check.agrees and check.params == report.total.params
    assert set(check.only_mmengine) == {'group_norm'}  # elementwise work only mmengine counts
    assert check.mmengine_total - check.only_mmengine['group_norm'] == report.total.macs


def test_cli_cross_check_reports_the_agreement(helper_module, capsys):
    pytest.importorskip('mmengine.analysis')
    assert count_flops.main(['--arch', 'my_sr_nets:NormSR', '--lr-size', '8x8', '--cross-check']) == 0
    text = capsys.readouterr().out
    assert 'Cross-check with mmengine.analysis' in text and ': agree.' in text
    assert 'counted by mmengine only (elementwise work): group_norm' in text


def test_unknown_name_lists_where_it_looked(capsys):
    pytest.importorskip('lesrcnn_plugin.basicsr')
    assert count_flops.main(['--arch', 'EDSRR']) == 1
    error = capsys.readouterr().err
    for place in ('LESRCNN family', "BasicSR's ARCH_REGISTRY", "MMagic's MODELS", 'module:callable'):
        assert place in error
    assert 'Closest names: basicsr:EDSR' in error
    assert count_flops.main(['--arch', 'basicsr:NoSuchNet']) == 1
    assert "BasicSR's ARCH_REGISTRY" in capsys.readouterr().err
    assert count_flops.main(['--arch', 'no_such_module_xyz:Net']) == 1
    assert 'cannot import no_such_module_xyz' in capsys.readouterr().err


def test_family_only_options_are_refused_for_other_networks(helper_module, capsys):
    assert count_flops.main(['--arch', 'my_sr_nets:TinySR', '--variant', 'ieeb']) == 1
    assert 'LESRCNN family only' in capsys.readouterr().err
    assert count_flops.main(['--arch', 'my_sr_nets:TinySR', '--arch-args', '[1, 2]']) == 1
    assert 'JSON object' in capsys.readouterr().err


def test_spandrel_weights(tmp_path):
    pytest.importorskip('spandrel', reason='the spandrel extra is not installed')
    from spandrel.architectures.SPAN import SPAN

    weights = tmp_path / 'span_x2.pth'
    torch.save(SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2).state_dict(), weights)
    report = run_count_flops(['--weights', str(weights), '--lr-size', '8x8'], tmp_path)
    loaded = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2).eval()
    loaded.load_state_dict(torch.load(weights))
    expected = independent_counts(loaded, (8, 8))
    assert report['network'] == 'spandrel:SPAN' and report['scale'] == 2
    # Activations are not compared: SPAN re-folds its kernels with functional convolutions in every
    # forward pass, which the NTIRE module hooks do not see (the counts per aten convolution do).
    assert (report['total']['params'], report['total']['macs']) == (expected['params'], expected['macs'])


def test_measure_runtime_ntire_mode_and_reference_only(tmp_path, helper_module):
    common = ['--arch', 'my_sr_nets:TinySR', '--lr-size', '8x8', '--warmup', '1', '--output-dir', str(tmp_path),
              '--quiet']
    assert measure_runtime.main([*common, '--ntire', '--repeats', '3']) == 0
    document = json.loads((tmp_path / 'runtime_ntire.json').read_text())
    (timing,) = document['timings']
    assert timing['clock'] == CPU_CLOCK and timing['images'] == 3 and timing['warmup'] == 1
    assert timing['mean_ms'] == pytest.approx(sum(timing['per_image_ms']) / 3)
    assert 'mean ms / image' in (tmp_path / 'runtime_ntire.md').read_text()

    pytest.importorskip('matplotlib')
    assert measure_runtime.main([*common, '--repeats', '1', '--no-roofline']) == 0
    rows = json.loads((tmp_path / 'runtime.json').read_text())['rows']
    assert {row['path'] for row in rows} == {'reference'}  # no fast path outside the family
    assert measure_runtime.main([*common, '--paths', 'fast']) == 1


def test_time_networks_interleaves_any_networks(helper_module):
    tiny = resolve_network('my_sr_nets:TinySR', {'scale': 2})
    family = resolve_network('LESRCNN', scale=2)
    timings = time_networks([(tiny.module, input_size(2, lr=(8, 8))), (family.module, input_size(2, lr=(8, 8)))],
                            warmup=1, repeats=2)
    assert [timing.rounds for timing in timings] == [2, 2]
    assert all(timing.p10 <= timing.median <= timing.p90 for timing in timings)


# --------------------------------------------------------------------------------------------------
# The rows of docs/comparison.md (tools/comparison_networks.py): each is the published network


@pytest.fixture
def comparison_tools(monkeypatch):
    """tools/ on the import path: the comparison's row list and its fold."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / 'tools'))
    import comparison_deploy
    import comparison_networks
    import make_comparison
    return comparison_networks, comparison_deploy, make_comparison


def _entries():
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools'))
    try:
        from comparison_networks import ENTRIES
    finally:
        sys.path.pop(0)
    return ENTRIES


@pytest.mark.parametrize('entry', _entries(), ids=lambda entry: entry.label)
def test_each_row_has_the_published_parameter_count(entry, comparison_tools):
    """Built as the page builds it (no forward pass beyond the scale probe), the deployed network has the
    parameter count its row states, to the printed precision; a row that says it differs does differ."""
    if entry.needs:  # BasicSR imports through the package's integration, which makes it importable
        pytest.importorskip('lesrcnn_plugin.basicsr' if entry.needs == 'basicsr' else entry.needs)
    networks, _, generator = comparison_tools
    network, deployed = generator.build(entry)
    params = sum(p.numel() for p in deployed.parameters())
    if entry.params.differs:
        assert not networks.params_match(entry.params.printed, params), entry.params.differs
    else:
        assert networks.params_match(entry.params.printed, params), (params, entry.params.printed)
    trained = sum(p.numel() for p in network.module.parameters())
    assert (trained > params) == entry.deployed  # folding removes parameters exactly where a row says it is folded


def test_params_match_reads_the_printed_precision(comparison_tools):
    match = comparison_tools[0].params_match
    assert match('792K', 792_499) and match('792K', 791_500) and not match('792K', 805_376)
    assert match('1.5M', 1_517_571) and not match('1.5M', 1_551_000)
    assert match('11,840', 11_840) and not match('11,840', 11_841)


def test_spans_fold_is_exact_and_counts_the_folded_network(comparison_tools):
    pytest.importorskip('spandrel')
    from spandrel.architectures.SPAN import SPAN

    _, fold, _ = comparison_tools
    torch.manual_seed(0)
    network = SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2)
    deployed, folded = fold.deploy(network)
    assert folded == 1 + 6 * 3 + 1  # conv_1, three per block, conv_2
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        branches = network.train()(x)  # the training forward: every branch, nothing folded
        assert torch.allclose(deployed(x), branches, atol=1e-4)
    counted = count_complexity(resolve_network('spandrel.architectures.SPAN:SPAN', {
        'num_in_ch': 3, 'num_out_ch': 3, 'feature_channels': 8, 'upscale': 2}).module, input_size(2, lr=(9, 11)))
    expected = independent_counts(deployed, (9, 11))
    # spandrel's network re-folds its kernels at every eval forward; the deployed one does not.
    assert expected['macs'] < counted.total.macs and expected['params'] < counted.total.params
    assert expected['params'] == 3 * 8 * 9 + 8 + 19 * (8 * 8 * 9 + 8) + 32 * 8 + 8 + 8 * 12 * 9 + 12


def test_ecbsr_fold_is_exact_on_y(comparison_tools):
    pytest.importorskip('lesrcnn_plugin.basicsr')
    from basicsr.archs.ecbsr_arch import ECBSR

    _, fold, _ = comparison_tools
    torch.manual_seed(0)
    network = ECBSR(num_in_ch=1, num_out_ch=1, num_block=2, num_channel=4, with_idt=False, act_type='prelu', scale=2)
    deployed, folded = fold.deploy(network)
    assert folded == 4
    y = torch.rand(1, 1, 7, 9)
    with torch.no_grad():
        assert torch.allclose(deployed(y), network.train()(y), atol=1e-5)
        rgb = torch.rand(1, 3, 7, 9)  # the Y network under the RGB calling contract runs on channel 0
        assert torch.equal(fold.LumaInput(deployed)(rgb), deployed(rgb[:, :1]))
    # Folded: one 3x3 convolution per block and the PReLUs of all but the last.
    assert sum(p.numel() for p in deployed.parameters()) == (9 * 4 + 4) + 3 * (4 * 4 * 9 + 4) + 3 * 4


def test_plot_ticks_are_plain_numbers(comparison_tools, tmp_path):
    pytest.importorskip('matplotlib')
    import comparison_page
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots()
    row = {'label': 'A x4', 'psnr_of': None}
    comparison_page._scatter(axis, [(row, 30.0, 'quoted, RGB network', 0.7), (row, 31.0, 'quoted, RGB network', 420)])
    figure.canvas.draw()
    labels = [tick.get_text() for tick in axis.get_xticklabels() if tick.get_text()]
    plt.close(figure)
    assert labels and all(label.replace('.', '').isdigit() for label in labels), labels


def test_text_only_rewrites_the_published_figures_and_keeps_the_counts(comparison_tools, tmp_path):
    """``make_comparison.py --text-only`` takes each row's quote and notes from the row list again, keeps every
    count and timing stored, and refuses a stored row whose network has changed since it was counted."""
    pytest.importorskip('matplotlib')
    networks, _, generator = comparison_tools
    shipped = json.loads((Path(__file__).resolve().parents[1] / 'docs' / 'comparison_data.json').read_text())
    stale = json.loads(json.dumps(shipped))
    for row in stale['networks']:
        row.update(quote=None, note='stale')
    (tmp_path / 'comparison_data.json').write_text(json.dumps(stale))
    assert generator.main(['--text-only', '--output-dir', str(tmp_path)]) == 0
    rewritten = json.loads((tmp_path / 'comparison_data.json').read_text())
    entries = {entry.label: entry for entry in networks.ENTRIES}
    counts = ('label', 'params', 'params_trained', 'macs_ntire', 'macs_720p', 'activations_ntire', 'cross_check')
    for before, after in zip(shipped['networks'], rewritten['networks'], strict=True):
        entry = entries[after['label']]
        assert after['quote'] == (entry.quote and vars(entry.quote)) and after['note'] == entry.note
        assert [after[key] for key in counts] == [before[key] for key in counts]
    assert rewritten['runtime'] == shipped['runtime']
    page = (tmp_path / 'comparison.md').read_text()
    omnisr = next(line for line in page.splitlines() if line.startswith('| OmniSR x4 | 32.49 '))
    assert '| 28.78 | 27.71 | 26.64 |' in omnisr and 'result.tex' in omnisr

    stale['networks'][0]['kwargs'] = {'changed': True}
    (tmp_path / 'comparison_data.json').write_text(json.dumps(stale))
    with pytest.raises(SystemExit, match='without --text-only'):
        generator.main(['--text-only', '--output-dir', str(tmp_path)])


def test_shipped_page_quotes_what_the_row_list_says(comparison_tools):
    """docs/comparison.md was generated from the present row list: every quoted figure is on its row."""
    networks, _, _ = comparison_tools
    page = (Path(__file__).resolve().parents[1] / 'docs' / 'comparison.md').read_text()
    for entry in networks.ENTRIES:
        if entry.quote:
            figures = [getattr(entry.quote, name) for name in ('set5', 'set14', 'b100', 'urban100')]
            cells = ' | '.join('' if value is None else f'{value:.2f}' for value in figures)
            assert f'| {entry.label} | {cells} | {entry.quote.source}' in page, entry.label
