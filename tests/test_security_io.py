"""Edges of downloads, outputs and messages (issue 20, parts 2, 3 and 5): what a hostile mirror, an
overflowing fp16 run, odd file names and concurrent runs get.

Downloads go to local servers on 127.0.0.1 (an endless stream, one that accepts and never answers,
a slow one); the weights cache is a temporary folder. The commands run as subprocesses, as users
run them.
"""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from lesrcnn_plugin.archs import LESRCNN
from lesrcnn_plugin.checkpoint import save_checkpoint
from lesrcnn_plugin.data.raw_store import write_raw_lmdb
from lesrcnn_plugin.weights import WEIGHTS, WeightsEntry, WeightsError, resolve_weights, weights_path

BIN = Path(sys.executable).parent
#: Where the endless stream gives up, so that a downloader without a cap cannot fill the disk.
STREAM_LIMIT = 32 * 2**20


def command(name: str, *args: str | os.PathLike, cwd: Path, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run an installed ``lesrcnn-*`` command."""
    return subprocess.run([str(BIN / name), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, 'OMP_NUM_THREADS': '1', **(env or {})})


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.replace('\r', '\n').splitlines() if line.startswith('error: ')]


class Server:
    """A threaded HTTP server on a free port of 127.0.0.1 answering GETs with ``respond(handler)``."""

    def __init__(self, respond):
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                respond(self)

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._server.daemon_threads = True
        self.url = f'http://127.0.0.1:{self._server.server_address[1]}/'
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """An empty weights cache and an unreachable mirror, so that nothing reaches the internet."""
    cache = tmp_path / 'cache'
    monkeypatch.setenv('LESRCNN_WEIGHTS_DIR', str(cache))
    monkeypatch.setenv('LESRCNN_WEIGHTS_MIRROR', 'http://127.0.0.1:9/unreachable')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    return cache


def serve(monkeypatch, respond) -> Server:
    server = Server(respond)
    monkeypatch.setenv('LESRCNN_WEIGHTS_MIRROR', server.url)
    return server


def cache_contents(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# ----------------------------------------------------------------------------------------- downloads


@pytest.mark.parametrize('announce', [False, True], ids=['no-length', 'length-announced'])
def test_endless_stream_stops_at_the_registered_size(monkeypatch, isolated_cache, announce):
    def endless(handler):
        handler.send_response(200)
        if announce:
            handler.send_header('Content-Length', str(STREAM_LIMIT))
        handler.end_headers()
        block = bytes(2**16)
        try:
            for _ in range(STREAM_LIMIT // len(block)):
                handler.wfile.write(block)
        except OSError:  # the client hung up: what it should do
            pass

    server = serve(monkeypatch, endless)
    try:
        with pytest.raises(WeightsError) as refused:
            weights_path('lesrcnn_x2', progress=False)
    finally:
        server.stop()
    message = str(refused.value)
    assert '\n' not in message
    assert (f"'lesrcnn_x2' from {server.url}x2/lesrcnn_x2.pth is larger than the registered "
            f"{WEIGHTS['lesrcnn_x2'].size} bytes") in message and 'nothing was kept' in message
    assert cache_contents(isolated_cache) == []


def _silent_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A socket on 127.0.0.1 that accepts connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen()
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener, accepted


def test_stalled_mirror_ends_with_one_line_within_the_timeout(tmp_path, isolated_cache):
    """A server that accepts and never answers: lesrcnn-upscale gives up after LESRCNN_WEIGHTS_TIMEOUT."""
    listener, accepted = _silent_listener()
    mirror = f'http://127.0.0.1:{listener.getsockname()[1]}/'
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    try:
        # The subprocess timeout only keeps a hanging downloader from hanging the test suite.
        result = command('lesrcnn-upscale', '-c', 'lesrcnn_x2', 'a.png', '-o', 'out', cwd=tmp_path, timeout=120,
                         env={'LESRCNN_WEIGHTS_MIRROR': mirror, 'LESRCNN_WEIGHTS_TIMEOUT': '1'})
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"error: cannot download 'lesrcnn_x2' from {mirror}x2/lesrcnn_x2.pth: no data for 1 s (the server stalled; "
        'LESRCNN_WEIGHTS_TIMEOUT=<seconds> sets how long to wait); set LESRCNN_WEIGHTS_MIRROR=<base URL> to a mirror '
        'holding x2/lesrcnn_x2.pth, or pass the path of a local file instead of the name']
    assert 'Traceback' not in result.stderr
    assert cache_contents(isolated_cache) == [] and not (tmp_path / 'out').exists()


def test_stall_in_the_middle_of_the_file_times_out(monkeypatch, isolated_cache):
    release = threading.Event()

    def stall(handler):
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(bytes(1000))
        handler.wfile.flush()
        release.wait(30)

    server = serve(monkeypatch, stall)
    monkeypatch.setenv('LESRCNN_WEIGHTS_TIMEOUT', '0.5')
    try:
        with pytest.raises(WeightsError, match=r"'lesrcnn_x2' from .*: no data for 0\.5 s \(the server stalled"):
            weights_path('lesrcnn_x2', progress=False)
    finally:
        release.set()
        server.stop()
    assert cache_contents(isolated_cache) == []


@pytest.mark.parametrize('value', ['0', '-1', 'soon', 'nan'])
def test_bad_timeout_is_named(monkeypatch, value):
    monkeypatch.setenv('LESRCNN_WEIGHTS_TIMEOUT', value)
    with pytest.raises(WeightsError, match=f"^LESRCNN_WEIGHTS_TIMEOUT='{value}': expected a positive number"):
        weights_path('lesrcnn_x2', progress=False)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, '-c', 'pass'])
    process.wait()
    return process.pid


def test_killed_download_leftovers_are_removed_and_concurrent_downloads_both_succeed(monkeypatch, isolated_cache):
    """What a download killed by SIGTERM left is removed by the next one; two at once both get the file."""
    payload = np.random.default_rng(0).integers(0, 256, 2**18, dtype=np.uint8).tobytes()
    monkeypatch.setitem(WEIGHTS, 'fake_x2', WeightsEntry(
        name='fake_x2', relative_path='x2/fake_x2.pth', sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload), arch='LESRCNN', scale=2, source='generated by the test', licence='none needed'))

    def slowly(handler):  # slow enough for the second download to start while the first runs
        handler.send_response(200)
        handler.send_header('Content-Length', str(len(payload)))
        handler.end_headers()
        for start in range(0, len(payload), 2**15):
            handler.wfile.write(payload[start:start + 2**15])
            time.sleep(0.02)

    isolated_cache.mkdir()
    leftovers = [f'.fake_x2.pth.{_dead_pid()}.0123abcd.tmp',  # this package's temporary name
                 f'.fake_x2.pth.{os.getpid()}.89abcdef.tmp.{"e" * 32}.partial']  # torch.hub's, in earlier versions
    for name in leftovers:
        (isolated_cache / name).write_bytes(bytes(2**20))
    server = serve(monkeypatch, slowly)
    results, errors = [], []

    def download():
        try:
            results.append(weights_path('fake_x2', progress=False))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    server.stop()
    assert errors == [] and results == [isolated_cache / 'fake_x2.pth'] * 2
    assert (isolated_cache / 'fake_x2.pth').read_bytes() == payload
    assert cache_contents(isolated_cache) == ['fake_x2.pth']
    assert server.requests == 1  # the second waited for the first, and found the file cached


def test_weights_dir_that_is_a_file_is_named(tmp_path, monkeypatch):
    cache = tmp_path / 'cache_file'
    cache.write_text('not a folder')
    monkeypatch.setenv('LESRCNN_WEIGHTS_DIR', str(cache))
    with pytest.raises(WeightsError) as refused:
        resolve_weights('lesrcnn_x2')
    assert str(refused.value) == (f'{cache}: is a file, not a folder; LESRCNN_WEIGHTS_DIR must name the folder that '
                                  'caches weights files')
    assert cache.read_text() == 'not a folder'


# ------------------------------------------------------------------------------------------- upscale


@pytest.fixture
def small_weights(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / 'w.pth'
    save_checkpoint(LESRCNN(2, num_feat=16).state_dict(), path, 'basicsr')
    return path


def test_fp16_overflow_is_refused_naming_the_image(tmp_path):
    """Finite weights, 4x larger than trained ones: activations exceed fp16's 65504, fine in fp32."""
    torch.manual_seed(0)
    state = LESRCNN(2, num_feat=16).state_dict()
    for name, tensor in state.items():
        if tensor.ndim == 4:
            tensor.mul_(4)
    save_checkpoint(state, tmp_path / 'loud.pth', 'basicsr')
    cv2.imwrite(str(tmp_path / 'photo.png'), np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    result = command('lesrcnn-upscale', '-c', 'loud.pth', 'photo.png', '-o', 'out', '--dtype', 'fp16', cwd=tmp_path)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        'error: photo.png: the network output holds NaN or Inf values in float16 (its activations overflow); '
        'not written; use --dtype fp32']
    assert not (tmp_path / 'out' / 'photo_x2.png').exists()
    fp32 = command('lesrcnn-upscale', '-c', 'loud.pth', 'photo.png', '-o', 'out', cwd=tmp_path)
    assert fp32.returncode == 0 and (tmp_path / 'out' / 'photo_x2.png').is_file()


def test_output_folder_that_is_a_file_and_newlines_in_names(tmp_path, small_weights):
    """The error names the file in the way; a newline in a name cannot start a forged error line."""
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    blocker = tmp_path / 'out\nerror: forged'
    blocker.write_text('a file')
    result = command('lesrcnn-upscale', '-c', small_weights, 'a.png', '-o', blocker.name, cwd=tmp_path)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        r'error: out\nerror: forged: is a file, not a folder; -o/--output names the folder for the outputs']
    assert blocker.read_text() == 'a file'

    (tmp_path / 'bad\nerror: forged.png').write_bytes(b'not an image')
    result = command('lesrcnn-upscale', '-c', small_weights, 'a.png', 'bad\nerror: forged.png', '-o', 'out',
                     cwd=tmp_path)
    assert result.returncode == 1 and (tmp_path / 'out' / 'a_x2.png').is_file()
    lines = result.stderr.replace('\r', '\n').splitlines()
    assert not any('forged' in line and not line.lstrip().startswith(('error: bad\\n', 'bad\\n')) for line in lines)
    assert any(line.startswith(r'error: bad\nerror: forged.png: not a readable image') for line in lines)


def _gif_and_tiff(folder: Path) -> None:
    """``folder/anim.gif`` (skipped: no decoder) and ``folder/pages.tif`` (3 pages), 24x24."""
    pages = [Image.fromarray(np.full((24, 24, 3), 60 * i, np.uint8)) for i in range(3)]
    pages[0].save(folder / 'anim.gif', save_all=True, append_images=pages[1:])
    pages[0].save(folder / 'pages.tif', save_all=True, append_images=pages[1:])


def test_upscale_warns_about_skipped_gifs_and_multi_page_tiffs(tmp_path, small_weights):
    photos = tmp_path / 'photos'
    photos.mkdir()
    cv2.imwrite(str(photos / 'a.png'), np.zeros((24, 24, 3), np.uint8))
    _gif_and_tiff(photos)
    result = command('lesrcnn-upscale', '-c', small_weights, 'photos', '-o', 'out', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith('warning: ')]
    assert warnings == ['warning: photos/anim.gif: GIF images are not supported, skipped (convert it to PNG to '
                        'include it)',
                        'warning: photos/pages.tif: TIFF of 3 pages; only the first is read']
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['a_x2.png', 'pages_x2.png']


def test_prepare_testsets_warns_once_per_file(tmp_path):
    set_folder = tmp_path / 'Set5'
    set_folder.mkdir()
    cv2.imwrite(str(set_folder / 'a.png'), np.zeros((24, 24, 3), np.uint8))
    _gif_and_tiff(set_folder)
    result = command('lesrcnn-prepare-testsets', 'Set5', '--output', 'out', '--scales', '2', '3', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith('warning: ')]
    assert warnings == ['warning: Set5/anim.gif: GIF images are not supported, skipped (convert it to PNG to '
                        'include it)',
                        'warning: Set5/pages.tif: TIFF of 3 pages; only the first is read']
    assert sorted(p.name for p in (tmp_path / 'out' / 'Set5' / 'X2' / 'HR').iterdir()) == ['a.png', 'pages.png']


# ---------------------------------------------------------------------------------------------- data


def test_raw_lmdb_is_byte_reproducible(tmp_path):
    rng = np.random.default_rng(0)
    images = [(f'{i:04d}_s001', rng.integers(0, 256, (40 + i, 30 + 2 * i, 3), dtype=np.uint8)) for i in range(20)]
    digests = set()
    for name in ('a', 'b', 'c'):
        # Freed memory with other bytes in it, for LMDB's page buffers to be drawn from.
        garbage = [rng.integers(0, 256, 10**5, dtype=np.uint8).tobytes() for _ in range(50)]
        del garbage
        write_raw_lmdb(tmp_path / f'{name}_raw.lmdb', images)
        digests.add(hashlib.sha256((tmp_path / f'{name}_raw.lmdb' / 'data.mdb').read_bytes()).hexdigest())
    assert len(digests) == 1


def test_second_concurrent_prepare_div2k_names_the_first(tmp_path):
    """The first run is paused (SIGSTOP) while it holds the lock; the second stops in one line naming it."""
    hr = tmp_path / 'DIV2K' / 'DIV2K_train_HR'
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(1, 7):
        cv2.imwrite(str(hr / f'{index:04d}.png'), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    arguments = ['--input', 'DIV2K', '--scales', '2', '--crop-size', '48', '--step', '24', '--workers', '1']
    lock = tmp_path / 'DIV2K' / '.lesrcnn-prepare-div2k.lock'
    first = subprocess.Popen([str(BIN / 'lesrcnn-prepare-div2k'), *arguments], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    try:
        owner = f'pid {first.pid} on {socket.gethostname()}'
        while first.poll() is None and not (lock.is_file() and lock.read_text() == owner):
            time.sleep(0.005)
        assert first.poll() is None, 'the first run ended before it was seen holding the lock: ' + first.stderr.read()
        first.send_signal(signal.SIGSTOP)
        second = command('lesrcnn-prepare-div2k', *arguments, cwd=tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
        _, first_err = first.communicate(timeout=300)
    assert second.returncode == 1
    assert error_lines(second.stderr) == [
        f'error: DIV2K: another lesrcnn-prepare-div2k run ({owner}) is writing here; wait for it to finish (it holds '
        'DIV2K/.lesrcnn-prepare-div2k.lock)']
    assert first.returncode == 0, first_err
    assert not lock.exists()
    assert sorted(p.name for p in (tmp_path / 'DIV2K').iterdir()) == [
        'DIV2K_train_HR', 'DIV2K_train_HR_sub.lmdb', 'DIV2K_train_LR_bicubic_X2_sub.lmdb']
