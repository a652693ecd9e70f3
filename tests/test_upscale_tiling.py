"""Automatic tiling (``tile='auto'``, ``lesrcnn-upscale``'s default): the tile it picks, and that its
output is the untiled output (seamless: every kept pixel sees the input it sees untiled)."""
from __future__ import annotations

import math
import threading

import cv2
import numpy as np
import pytest
import torch

from lesrcnn_plugin.archs import LESRCNN, DualKernelLESRCNN
from lesrcnn_plugin.cli import upscale as upscale_cli
from lesrcnn_plugin.inference import (AUTO_TILE_LIMIT, auto_tile_size, prepare_network, receptive_field_margin,
                                      tiled_forward, upscale_tensor)


def test_small_images_run_whole():
    assert auto_tile_size(256, 256, 13) is None
    assert auto_tile_size(80, 600, 13) is None  # as many pixels as a 219 x 219 tile: no tiling needed
    assert auto_tile_size(257, 256, 13) is not None
    assert auto_tile_size(500, 500, 13, 'cuda') is None and auto_tile_size(500, 500, 13, 'cpu') is not None


@pytest.mark.parametrize('height, width', [(700, 1100), (540, 960), (257, 256), (2160, 3840), (300, 1000), (1000, 70)])
@pytest.mark.parametrize('device_type, overlap', [('cpu', 13), ('cpu', 20), ('cuda', 13)])
def test_auto_tiles_fit_the_limit_are_fewest_and_even(height, width, device_type, overlap):
    core = auto_tile_size(height, width, overlap, device_type)
    limit = AUTO_TILE_LIMIT[device_type]
    if core is None:  # untiled: the image is no larger than one tile
        assert height * width <= limit * limit
        return
    assert core + 2 * overlap <= limit
    largest = limit - 2 * overlap
    count = math.ceil(height / core) * math.ceil(width / core)
    assert count == math.ceil(height / largest) * math.ceil(width / largest)  # no more tiles than needed
    # and no smaller core gives as few: the most even split of that count
    assert math.ceil(height / (core - 1)) * math.ceil(width / (core - 1)) > count


def test_the_1100x700_image_gets_4x5_tiles_of_220():
    assert auto_tile_size(700, 1100, 13) == 220


class CallCounter:
    def __init__(self, module):
        self.calls = 0
        module.register_forward_hook(self)

    def __call__(self, module, inputs, output):
        self.calls += 1


@pytest.mark.parametrize('model', [LESRCNN(2, num_feat=8), LESRCNN(3, num_feat=8), DualKernelLESRCNN(2, num_feat=8)],
                         ids=['LESRCNN_x2', 'LESRCNN_x3', 'DualKernelLESRCNN_x2'])
def test_auto_tiled_output_is_the_untiled_output(model):
    torch.manual_seed(0)
    model.eval()
    network = prepare_network(model)
    x = torch.rand(1, 3, 270, 300)
    counter = CallCounter(network)
    untiled = upscale_tensor(network, x)
    assert counter.calls == 1
    tiled = upscale_tensor(network, x, tile='auto')
    core = auto_tile_size(270, 300, receptive_field_margin(model))
    assert counter.calls == 1 + math.ceil(270 / core) * math.ceil(300 / core) > 2
    assert (tiled - untiled).abs().max().item() <= 1e-5


def test_auto_is_the_default_of_lesrcnn_upscale_and_seamless(tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / 'lesrcnn_x2.pth'
    torch.save(LESRCNN(2, num_feat=8).state_dict(), weights)
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 256, (40, 50, 3), np.uint8), (330, 260), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / 'photo.png'), image)

    assert upscale_cli.main(['-c', str(weights), str(tmp_path / 'photo.png'), '-o', str(tmp_path / 'auto')]) == 0
    assert 'tiles auto + overlap 13' in capsys.readouterr().out
    assert upscale_cli.main(['-c', str(weights), str(tmp_path / 'photo.png'), '-o', str(tmp_path / 'whole'),
                             '--tile', 'none']) == 0
    assert 'tiles' not in capsys.readouterr().out
    auto = cv2.imread(str(tmp_path / 'auto' / 'photo_x2.png'))
    whole = cv2.imread(str(tmp_path / 'whole' / 'photo_x2.png'))
    assert auto.shape == (520, 660, 3)
    assert np.array_equal(auto, whole)


def test_tile_option_values(tmp_path, capsys):
    base = ['-c', 'w.pth', 'in.png', '-o', str(tmp_path)]
    assert upscale_cli.parse_args(base).tile == 'auto'
    assert upscale_cli.parse_args([*base, '--tile', 'none']).tile is None
    assert upscale_cli.parse_args([*base, '--tile', '96', '--tile-overlap', '20']).tile == 96
    assert upscale_cli.parse_args([*base, '--tile', 'auto', '--tile-overlap', '20']).tile_overlap == 20
    for bad in (['--tile', 'big'], ['--tile', '0'], ['--tile', 'none', '--tile-overlap', '4']):
        with pytest.raises(SystemExit) as exit_info:
            upscale_cli.parse_args([*base, *bad])
        assert exit_info.value.code == 2
    assert 'argument --tile' in capsys.readouterr().err
    model = prepare_network(LESRCNN(2, num_feat=8).eval())
    cpu = torch.device('cpu')
    # Tiles bound the memory: auto gets the tiled limit, 'none' keeps the untiled ones.
    assert upscale_cli.default_max_pixels(model, 'auto', cpu, torch.float32) == upscale_cli.MAX_PIXELS_TILED
    assert upscale_cli.default_max_pixels(model, None, cpu, torch.float32) == upscale_cli.MAX_PIXELS_UNTILED_FUSED


@pytest.fixture
def two_torch_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('fast', [False, True], ids=['eager', 'fast'])
def test_concurrent_tiles_give_the_sequential_output_bit_for_bit(fast, two_torch_threads):
    torch.manual_seed(0)
    network = prepare_network(LESRCNN(2, num_feat=8).eval(), fast=fast)
    x = torch.rand(1, 3, 60, 70)
    margin = receptive_field_margin(network, 2)

    def run(tile):
        return network(tile, scale=2)

    with torch.inference_mode():
        sequential = tiled_forward(run, x, 2, 24, margin)
        concurrent = tiled_forward(run, x, 2, 24, margin, workers=3)
    assert torch.equal(concurrent, sequential)
    assert torch.get_num_threads() == 2  # the workers ran with one thread each; the caller's count is back


def test_upscale_tensor_runs_cpu_tiles_on_one_worker_per_thread_without_autograd(two_torch_threads):
    torch.manual_seed(0)
    model = LESRCNN(2, num_feat=8)  # parameters require grad: the workers must not record a graph
    threads_seen = set()
    model.register_forward_hook(lambda module, inputs, output: threads_seen.add(threading.current_thread().name))
    y = upscale_tensor(model, torch.rand(1, 3, 270, 270), tile='auto')  # 2 x 2 tiles
    assert len(threads_seen) == 2 and all(name.startswith('lesrcnn-tile') for name in threads_seen)
    assert not y.requires_grad
    assert torch.get_num_threads() == 2


def test_a_failing_tile_stops_the_run_and_restores_the_thread_count(two_torch_threads):
    calls = []

    def run(tile):
        calls.append(tile.shape)
        if len(calls) == 2:
            raise RuntimeError('tile failed')
        return tile.repeat_interleave(2, -1).repeat_interleave(2, -2)

    with pytest.raises(RuntimeError, match='tile failed'):
        tiled_forward(run, torch.rand(1, 3, 400, 400), 2, 10, 0, workers=2)
    assert len(calls) < 1600  # the tiles not yet started were cancelled
    assert torch.get_num_threads() == 2


def test_tiled_forward_rejects_bad_arguments():
    for tile, overlap, workers in ((0, 1, 1), (8, -1, 1), (8, 1, 0)):
        with pytest.raises(ValueError, match='workers >= 1'):
            tiled_forward(lambda t: t, torch.rand(1, 3, 8, 8), 1, tile, overlap, workers)


def test_tiles_larger_than_auto_run_one_at_a_time_in_the_callers_thread(two_torch_threads):
    model = LESRCNN(2, num_feat=8).eval()
    threads_seen = set()
    model.register_forward_hook(lambda module, inputs, output: threads_seen.add(threading.current_thread().name))
    core = AUTO_TILE_LIMIT['cpu'] - 2 * receptive_field_margin(model) + 1  # with its context, larger than auto's
    upscale_tensor(model, torch.rand(1, 3, core + 4, core + 4), tile=core)
    assert threads_seen == {threading.current_thread().name}
