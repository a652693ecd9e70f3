"""The runtime tool end to end on a tiny configuration: valid JSON, CSV, markdown and PNGs.

No timing is asserted (the machine running the tests may be loaded); the structure of the outputs,
the equality of the fast path's output and the bookkeeping (MACs, speed-ups) are.
"""
from __future__ import annotations

import csv
import json
import os

import pytest

from lesrcnn_plugin.benchmark import load, paper
from lesrcnn_plugin.benchmark.load import MachineBusyError, wait_until_idle
from lesrcnn_plugin.benchmark.paper import time_paper_table8
from lesrcnn_plugin.benchmark.plots import read_results
from lesrcnn_plugin.benchmark.timing import ROOFLINE_MACS, Setting, Timing, settings_grid
from lesrcnn_plugin.cli import measure_runtime
from lesrcnn_plugin.complexity import count_complexity, input_size
from lesrcnn_plugin.archs import LESRCNN

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def test_tiny_run_writes_valid_outputs(tmp_path):
    results = tmp_path / 'results.csv'
    results.write_text('name,params,macs,psnr,dataset,scale\nLESRCNN,626328,1.2e9,37.80,Set5,2\n'
                       'Bicubic,0,0,33.66,Set5,2\n')
    out = tmp_path / 'out'
    argv = ['--arch', 'LESRCNN', '--scale', '2', '--lr-size', '32x32', '--repeats', '2', '--warmup', '1',
            '--dtypes', 'fp32', 'bf16', '--threads', '1', '--output-dir', str(out), '--results-file', str(results),
            '--quiet']
    assert measure_runtime.main(argv) == 0

    document = json.loads((out / 'runtime.json').read_text())
    nets = [row for row in document['rows'] if row['kind'] == 'net']
    # {reference, fast} x {fp32, bf16} x {nchw, channels_last}
    assert len(nets) == 8
    expected_macs = count_complexity(LESRCNN(2), input_size(2, lr=(32, 32))).total.macs
    for row in nets:
        assert row['rounds'] == 2 and row['threads'] == 1
        assert row['p10_ms'] <= row['median_ms'] <= row['p90_ms']
        assert row['images_per_s'] == pytest.approx(1e3 / row['median_ms'])
        assert row['megapixels_per_s'] == pytest.approx(64 * 64 / 1e6 * 1e3 / row['median_ms'])
        assert row['peak_memory_mb'] > 0
        is_reference = (row['path'], row['dtype'], row['memory_format']) == ('reference', 'fp32', 'nchw')
        assert (row['max_abs_diff'] is None) == is_reference
        if row['dtype'] == 'fp32' and not is_reference:
            assert row['max_abs_diff'] < 1e-5
        if row['dtype'] == 'bf16':
            assert 0 < row['max_abs_diff'] < 0.1
        upsampler_pass = 64 * 256 * 9 * 32 * 32
        assert row['macs'] == expected_macs - (upsampler_pass if row['path'] == 'fast' else 0)
    probes = [row for row in document['rows'] if row['kind'] == 'roofline']
    assert probes and all(row['macs'] == ROOFLINE_MACS for row in probes)
    names = {item['comparison'] for item in document['comparisons']}
    assert {'fast nchw vs reference nchw', 'fast channels_last vs reference nchw',
            'roofline fraction, fast channels_last'} <= names
    # Speed targets are documentation (docs/benchmarks.md), not output.
    assert 'targets' not in document
    assert all(set(item) == {'comparison', 'size', 'threads', 'value', 'max_abs_diff', 'low', 'high'}
               for item in document['comparisons'])
    for item in document['comparisons']:  # a speed-up's range brackets it; a roofline fraction has none
        assert item['low'] is None or item['low'] <= item['value'] <= item['high']
    for row in nets:
        assert row['spread'] == pytest.approx((row['p90_ms'] - row['p10_ms']) / row['median_ms'])
        assert row['unstable'] == (row['spread'] > 0.2)
    assert document['environment']['load_average'] and 'load_average_after' in document['environment']
    assert document['environment']['torch']

    with (out / 'runtime.csv').open() as handle:
        assert len(list(csv.DictReader(handle))) == len(document['rows'])
    assert 'max abs diff' in (out / 'runtime.md').read_text()
    for name in ('runtime.png', 'runtime_quality.png'):
        assert (out / name).read_bytes()[:8] == PNG_SIGNATURE


def test_settings_grid_always_has_the_reference():
    grid = settings_grid(paths=['fast'], memory_formats=['channels_last'], threads=[1, 2])
    assert Setting('reference', threads=1) in grid and Setting('reference', threads=2) in grid
    assert Setting('fast', memory_format='channels_last', threads=2) in grid
    with pytest.raises(ValueError):
        settings_grid(dtypes=['fp8'])


def test_results_file_formats(tmp_path):
    as_json = tmp_path / 'r.json'
    as_json.write_text(json.dumps([{'name': 'A', 'params': 1000, 'macs': 2e9, 'psnr': 30.1}]))
    assert read_results(str(as_json)) == [{'name': 'A', 'params': 1000.0, 'macs': 2e9, 'psnr': 30.1, 'group': ''}]
    broken = tmp_path / 'r.csv'
    broken.write_text('name,params,psnr\nA,1,2\n')
    with pytest.raises(ValueError, match='macs'):
        read_results(str(broken))


def test_user_errors_exit_non_zero(tmp_path, capsys):
    assert measure_runtime.main(['--lr-size', '8x8', '--results-file', str(tmp_path / 'none.csv'),
                                 '--output-dir', str(tmp_path), '--quiet']) == 1
    assert 'none.csv' in capsys.readouterr().err


def test_threads_default_to_one_and_all_cores(monkeypatch):
    monkeypatch.setattr(measure_runtime, 'cpu_count', lambda: 4)
    assert measure_runtime.default_threads('cpu') == [1, 4]
    monkeypatch.setattr(measure_runtime, 'cpu_count', lambda: 1)
    assert measure_runtime.default_threads('cpu') == [1]
    assert measure_runtime.default_threads('cuda') == [None]


def test_wait_until_idle_waits_then_refuses():
    loads = iter([(5.0, 1, 1), (3.0, 1, 1), (1.5, 1, 1)])
    slept = []
    assert wait_until_idle(60, poll_s=10, limit=2, read_load=lambda: next(loads), sleep=slept.append) == 1.5
    assert slept == [10, 10]
    slept.clear()
    with pytest.raises(MachineBusyError, match='load average is 9.00, above the 2 cores, after waiting 25 s'):
        wait_until_idle(25, poll_s=10, limit=2, read_load=lambda: (9.0, 9, 9), sleep=slept.append)
    assert slept == [10, 10, 5]  # bounded: never more than the wait asked for
    assert wait_until_idle(0, limit=2, read_load=lambda: None) is None  # no load average: nothing to wait for


def test_require_idle_refuses_on_a_busy_machine(tmp_path, monkeypatch, capsys):
    busy = os.cpu_count() + 5.0
    monkeypatch.setattr(load, 'load_average', lambda: (busy, busy, busy))
    argv = ['--lr-size', '8x8', '--require-idle', '--idle-wait', '1', '--output-dir', str(tmp_path), '--quiet']
    assert measure_runtime.main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith('error: --require-idle: the load average is') and '\n' not in error
    assert not list(tmp_path.iterdir())  # refused before measuring: nothing written


def test_paper_table8_table_and_refusal(tmp_path, capsys):
    timings = [paper.PaperTiming(name, size, Timing(0.02, 0.019, 0.03, 5, 1))
               for name in paper.NETWORKS for size in paper.SIZES]
    assert timings[2].to_dict()['paper_s'] == 0.0222 and timings[3].to_dict()['paper_s'] is None
    markdown = paper.format_paper_markdown(timings, 'this CPU')
    assert '| LESRCNN | 1024x1024 | 0.0200 | 0.0190 | 0.0300 | 55.0% UNSTABLE | 0.0222 |' in markdown
    assert 'MemNet 0.8774 / 3.605 / 14.69' in markdown and 'GPU not named' in markdown
    assert measure_runtime.main(['--preset', 'paper-table8', '--lr-size', '8x8', '--output-dir', str(tmp_path)]) == 1
    assert 'give it alone' in capsys.readouterr().err


@pytest.mark.slow
def test_paper_table8_times_the_family_in_one_run():
    timings = time_paper_table8(threads=1, warmup=0, repeats=1, sizes=('256',))
    assert [(item.network, item.size) for item in timings] == [(name, '256') for name in paper.NETWORKS]
    assert all(item.timing.rounds == 1 and item.timing.median > 0 for item in timings)
