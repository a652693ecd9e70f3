"""Reproduce, end to end, what the lesrcnn-* commands do with bad input and faults (docs/reliability.md).

Usage::

    python tools/check_reliability.py            # about two minutes on 2 CPU cores; exit status 1 if a case misbehaves

Each case runs the installed console scripts in a scratch folder and prints the command, its exit
status and its error lines, then checks what a careful user expects: the right exit status, the file
named in one line, no traceback, no input or existing output touched, nothing half-written. The
full-disk and read-only cases mount 64 KiB tmpfs file systems, which needs root; without it they are
skipped, saying so.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import lmdb
import numpy as np
import torch
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the console scripts of the environment running this script


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, in a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b'')


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Checker:
    """Runs the cases in ``root`` and counts those whose outcome is not the expected one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.failed: list[str] = []

    def run(self, title: str, command: list[str], status: int, expect: Callable[[str], list[str]] = lambda err: [],
            cwd: Path | None = None) -> str:
        """Run ``command``; check its exit status, no traceback, and ``expect(stderr)`` (a list of problems)."""
        print(f'\n## {title}\n$ {shlex.join(command)}', flush=True)
        started = time.perf_counter()
        result = subprocess.run([str(BIN / command[0]) if (BIN / command[0]).exists() else command[0], *command[1:]],
                                cwd=cwd or self.root, capture_output=True, text=True, timeout=300,
                                env={**os.environ, 'OMP_NUM_THREADS': '2'})
        err = result.stderr.replace('\r', '\n')
        for line in err.splitlines():
            if line.startswith('error: ') or ': error: ' in line:
                print(f'  {line.strip()}')
        problems = expect(err)
        if result.returncode != status:
            problems.append(f'exit status {result.returncode}, expected {status}')
        if 'Traceback' in err:
            problems.append('a traceback was printed')
        verdict = 'ok' if not problems else 'UNEXPECTED: ' + '; '.join(problems)
        print(f'  -> exit {result.returncode} in {time.perf_counter() - started:.1f} s: {verdict}', flush=True)
        if problems:
            self.failed.append(title)
        return err

    def skip(self, title: str, reason: str) -> None:
        print(f'\n## {title}\n  skipped: {reason}')


def contains(*texts: str) -> Callable[[str], list[str]]:
    return lambda err: [f'no "{text}" in the error output' for text in texts if text not in err]


def single_error(line: str) -> Callable[[str], list[str]]:
    """Exactly one error line, ``line``."""
    def check(err: str) -> list[str]:
        lines = [text for text in err.splitlines() if text.startswith('error: ')]
        return [] if lines == [line] else [f'error lines {lines}, expected [{line!r}]']

    return check


def unchanged(paths_and_digests: dict[Path, str]) -> list[str]:
    return [f'{path} was changed' for path, before in paths_and_digests.items() if digest(path) != before]


def mount_tmpfs(folder: Path, read_only: bool) -> str | None:
    """Mount a 64 KiB tmpfs (read-only, or filled up); the reason when it cannot be done."""
    folder.mkdir()
    options = 'size=64k' + (',ro' if read_only else '')
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(folder)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        return f'mounting a tmpfs is not permitted here ({result.stderr.strip()})'
    if not read_only:
        with open(folder / 'filler', 'wb', buffering=0) as filler:
            try:
                while True:
                    filler.write(bytes(4096))
            except OSError:
                pass
    return None


def build_inputs(root: Path) -> None:
    """Weights (finite and NaN), images (a good one, two header bombs), LMDBs, a miniature DIV2K."""
    from lesrcnn_plugin.archs import LESRCNN
    from lesrcnn_plugin.checkpoint import save_checkpoint
    from lesrcnn_plugin.data import write_lmdb

    torch.manual_seed(0)
    state = LESRCNN(2, num_feat=16).state_dict()
    save_checkpoint(state, root / 'w.pth', 'basicsr')
    state['refinement.to_rgb.weight'].fill_(float('nan'))
    save_checkpoint(state, root / 'nan.pth', 'basicsr')
    rng = np.random.default_rng(0)
    (root / 'batch').mkdir()
    cv2.imwrite(str(root / 'batch' / 'good.png'), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    (root / 'batch' / 'bomb_60000.png').write_bytes(header_only_png(60000, 60000))
    (root / 'batch' / 'bomb_30000.png').write_bytes(header_only_png(30000, 30000))
    cv2.imwrite(str(root / 'inplace.png'), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))

    images = [(f'{i:04d}_s001', rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)) for i in range(1, 4)]
    write_lmdb(root / 'lmdb' / 'HR_sub.lmdb', images)
    write_lmdb(root / 'lmdb' / 'LR_X2_sub.lmdb', [(key, image[::2, ::2].copy()) for key, image in images])
    env = lmdb.open(str(root / 'lmdb' / 'LR_X2_sub.lmdb'))
    with env.begin(write=True) as txn:  # a record lost after the database was built
        txn.delete(b'0002_s001')
    env.close()
    opt = yaml.safe_load((REPO / 'options' / 'train_lesrcnn_x2.yml').read_text())
    opt['datasets']['train'].update(dataroot_gt='lmdb/HR_sub.lmdb', dataroot_lq='lmdb/LR_X2_sub.lmdb')
    del opt['datasets']['val']
    (root / 'missing_key.yml').write_text(yaml.safe_dump(opt))
    opt['network_g']['upscal'] = opt['network_g'].pop('upscale')
    (root / 'typo.yml').write_text(yaml.safe_dump(opt))

    (root / 'DIV2K' / 'DIV2K_train_HR').mkdir(parents=True)
    for name in ('0001', '0002'):
        cv2.imwrite(str(root / 'DIV2K' / 'DIV2K_train_HR' / f'{name}.png'),
                    rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))


def main() -> int:
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix='lesrcnn_reliability_'))
    check = Checker(root)
    mounts = []
    try:
        build_inputs(root)

        check.run('A PNG header claiming 60000x60000 (and one 30000x30000) beside a good image',
                  ['lesrcnn-upscale', '-c', 'w.pth', 'batch', '-o', 'out', '--tile', 'none'], 1,
                  lambda err: contains('bomb_60000.png: 60000x60000 image', 'bomb_30000.png: 30000x30000 image',
                                       'use --tile 512')(err)
                  + ([] if (root / 'out' / 'good_x2.png').is_file() else ['good.png was not upscaled']))
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        print(f'  peak memory of the commands so far: {peak:.2f} GB (decoding the 30000x30000 image was OOM-killed at '
              '23.5 GB before)')

        before = {root / 'out' / 'good_x2.png': digest(root / 'out' / 'good_x2.png')}
        check.run('The same batch again: the existing output', ['lesrcnn-upscale', '-c', 'w.pth', 'batch/good.png',
                                                               '-o', 'out'], 1,
                  lambda err: contains('good_x2.png: exists, not replaced (pass --overwrite')(err) + unchanged(before))

        before = {root / 'inplace.png': digest(root / 'inplace.png')}
        check.run('Output over the input (--suffix \'\' into its own folder), even with --overwrite',
                  ['lesrcnn-upscale', '-c', 'w.pth', 'inplace.png', '-o', '.', '--suffix', '', '--overwrite'], 1,
                  lambda err: contains('inplace.png: is the input')(err) + unchanged(before))

        check.run('A checkpoint whose weights are NaN, upscaled', ['lesrcnn-upscale', '-c', 'nan.pth', 'inplace.png',
                                                                  '-o', 'nan_out'], 1,
                  contains('non-finite weights (NaN or Inf) in refinement.to_rgb.weight'))
        check.run('A checkpoint whose weights are NaN, exported to ONNX', ['lesrcnn-export-onnx', 'nan.pth', 'nan.onnx'],
                  1, lambda err: contains('non-finite weights (NaN or Inf)')(err)
                  + (['nan.onnx was written'] if (root / 'nan.onnx').exists() else []))

        check.run('--num-feat 0', ['lesrcnn-count-flops', '--arch', 'LESRCNN', '--num-feat', '0'], 2,
                  contains('argument --num-feat: must be at least 1, got 0'))

        check.run('A meta_info.txt key missing from the LMDB, at the start of BasicSR training',
                  ['lesrcnn-train', '-opt', 'missing_key.yml'], 1,
                  lambda err: contains("key '0002_s001'", 'LR_X2_sub.lmdb')(err)
                  + (['experiments/ was created'] if (root / 'experiments').exists() else []))
        check.run('A typo in network_g (upscal:)', ['lesrcnn-train', '-opt', 'typo.yml'], 1,
                  lambda err: contains('network_g.upscal is not an argument of LESRCNN; valid names: upscale')(err)
                  + (['experiments/ was created'] if (root / 'experiments').exists() else []))

        div2k = ['lesrcnn-prepare-div2k', '--input', 'DIV2K', '--workers', '1', '--scales', '2', '--step', '24']
        check.run('DIV2K databases with 48-pixel crops', div2k + ['--crop-size', '48'], 0)
        shutil.rmtree(root / 'DIV2K' / 'DIV2K_train_LR_bicubic_X2_sub.lmdb')
        check.run('The x2 database rebuilt alone with --crop-size 24', div2k + ['--crop-size', '24'], 1,
                  contains('DIV2K_train_HR_sub.lmdb: built with crop_size 48 (this run: 24); pass --replace'))

        for name, read_only in (('full', False), ('read-only', True)):
            reason = mount_tmpfs(root / name, read_only)
            if reason:
                check.skip(f'A {name} file system', reason)
                continue
            mounts.append(root / name)
            text = 'Read-only file system' if read_only else 'No space left on device'
            for command, target in ((['lesrcnn-convert', 'w.pth', f'{name}/w.pth', '--to', 'official'], 'w.pth'),
                                    (['lesrcnn-export-onnx', 'w.pth', f'{name}/w.onnx'], 'w.onnx'),
                                    (div2k + ['--crop-size', '48', '--output', name, '--in-memory'],
                                     'DIV2K_train_HR_sub.lmdb')):
                check.run(f'{command[0]} onto a {name} file system', command, 1,
                          lambda err, line=f'error: {name}/{target}: {text}': single_error(line)(err)
                          + [f'left {p.name}' for p in (root / name).iterdir() if p.name != 'filler'])
        check_downloads_outputs_and_messages(check, root)
        check_untrusted_files(check, root)
        check_faults_during_training(check, root)
    finally:
        for mount in mounts:
            subprocess.run(['umount', '--lazy', str(mount)], check=False)
        shutil.rmtree(root, ignore_errors=True)
    print(f'\n{len(check.failed)} unexpected outcome(s) in {time.perf_counter() - started:.0f} s'
          + (': ' + '; '.join(check.failed) if check.failed else ''))
    return 1 if check.failed else 0


# ------------------------------------------- downloads, outputs and messages at the edges (issue 20)


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Set environment variables for the commands run inside the block."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def hostile_mirror(kind: str) -> Iterator[str]:
    """A mirror on 127.0.0.1 that streams zeros without end (``endless``, stopped at 64 MB should the
    cap fail) or accepts connections and never sends a byte (``stalled``); yields its URL."""
    if kind == 'endless':
        class Endless(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                with contextlib.suppress(OSError):  # the client hangs up at the cap
                    for _ in range(1024):
                        self.wfile.write(bytes(2**16))

            def log_message(self, format, *args):
                pass

        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Endless)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f'http://127.0.0.1:{server.server_address[1]}/'
        finally:
            server.shutdown()
            server.server_close()
        return
    listener = socket.create_server(('127.0.0.1', 0))
    connections = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connections.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f'http://127.0.0.1:{listener.getsockname()[1]}/'
    finally:
        listener.close()
        for connection in connections:
            connection.close()


def check_downloads_outputs_and_messages(check: Checker, root: Path) -> None:
    """The cases of docs/reliability.md, "Downloads, outputs and messages at the edges"."""
    upscale = ['lesrcnn-upscale', '-c', 'lesrcnn_x2', 'inplace.png', '-o', 'edge_out']
    cache = root / 'edge_cache'
    for kind, expected in (('endless', 'is larger than the registered 2510948 bytes'),
                           ('stalled', 'no data for 2 s (the server stalled')):
        with hostile_mirror(kind) as url, environment(LESRCNN_WEIGHTS_MIRROR=url, LESRCNN_WEIGHTS_DIR=str(cache),
                                                      LESRCNN_WEIGHTS_TIMEOUT='2', NO_PROXY='127.0.0.1'):
            check.run(f'Weights from a mirror that is {kind}', upscale, 1,
                      lambda err: contains(expected)(err)
                      + [f'the cache holds {p.name}' for p in (cache.iterdir() if cache.exists() else ())])
    (root / 'cache_file').write_text('not a folder')
    with environment(LESRCNN_WEIGHTS_DIR=str(root / 'cache_file')):
        check.run('LESRCNN_WEIGHTS_DIR that is a file', upscale, 1,
                  single_error(f'error: {root / "cache_file"}: is a file, not a folder; LESRCNN_WEIGHTS_DIR must name '
                               'the folder that caches weights files'))
    check.run('A mistyped weights name', ['lesrcnn-upscale', '-c', 'lesrcnn_2x', 'inplace.png', '-o', 'edge_out'], 1,
              single_error("error: 'lesrcnn_2x': no such file, and not a registered weights name; registered: "
                           'lesrcnn_x2, lesrcnn_x3, lesrcnn_x4'))

    from lesrcnn_plugin.archs import LESRCNN
    from lesrcnn_plugin.checkpoint import save_checkpoint
    torch.manual_seed(0)
    state = LESRCNN(2, num_feat=16).state_dict()
    for tensor in state.values():
        if tensor.ndim == 4:
            tensor.mul_(4)  # finite weights whose activations exceed fp16's 65504
    save_checkpoint(state, root / 'loud.pth', 'basicsr')
    check.run('fp16 on weights whose activations overflow it',
              ['lesrcnn-upscale', '-c', 'loud.pth', 'inplace.png', '-o', 'fp16_out', '--dtype', 'fp16'], 1,
              lambda err: single_error('error: inplace.png: the network output holds NaN or Inf values in float16 '
                                       '(its activations overflow); not written; use --dtype fp32')(err)
              + (['an output was written'] if (root / 'fp16_out' / 'inplace_x2.png').exists() else []))

    blocker = root / 'out\nerror: forged'
    blocker.write_text('a file')
    check.run('An output folder that is a file, with a newline in its name',
              ['lesrcnn-upscale', '-c', 'w.pth', 'inplace.png', '-o', blocker.name], 1,
              single_error(r'error: out\nerror: forged: is a file, not a folder; -o/--output names the folder for '
                           'the outputs'))

    (root / 'frames').mkdir()
    pages = [Image.fromarray(np.full((24, 24, 3), 60 * i, np.uint8)) for i in range(3)]
    pages[0].save(root / 'frames' / 'anim.gif', save_all=True, append_images=pages[1:])
    pages[0].save(root / 'frames' / 'pages.tif', save_all=True, append_images=pages[1:])
    check.run('A GIF and a 3-page TIFF in a folder', ['lesrcnn-upscale', '-c', 'w.pth', 'frames', '-o', 'frames_out'],
              0, contains('warning: frames/anim.gif: GIF images are not supported, skipped',
                          'warning: frames/pages.tif: TIFF of 3 pages; only the first is read'))

    div2k = ['lesrcnn-prepare-div2k', '--input', 'DIV2K', '--workers', '1', '--scales', '2', '--step', '24',
             '--crop-size', '48', '--storage', 'raw']
    for output in ('raw_a', 'raw_b'):
        check.run(f'Raw databases into {output}', div2k + ['--output', output], 0)
    raw = 'DIV2K_train_HR_sub_raw.lmdb/data.mdb'
    identical = digest(root / 'raw_a' / raw) == digest(root / 'raw_b' / raw)
    print(f'  raw LMDBs built twice: {"identical" if identical else "UNEXPECTED: they differ"}')
    if not identical:
        check.failed.append('raw LMDBs built twice differ')

    # The first run is paused once it holds its lock, so that the second surely meets it.
    lock = root / 'raw_c' / '.lesrcnn-prepare-div2k.lock'
    first = subprocess.Popen([str(BIN / div2k[0]), *div2k[1:], '--output', 'raw_c'], cwd=root,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while first.poll() is None and not (lock.is_file() and lock.read_text().startswith('pid')):
        time.sleep(0.005)
    if first.poll() is None:
        first.send_signal(signal.SIGSTOP)
        try:
            check.run('A second lesrcnn-prepare-div2k run into the same folder', div2k + ['--output', 'raw_c'], 1,
                      contains(f'error: raw_c: another lesrcnn-prepare-div2k run (pid {first.pid} on '))
        finally:
            first.send_signal(signal.SIGCONT)
    else:
        check.failed.append('the first lesrcnn-prepare-div2k run was never seen holding its lock')
    if first.wait(timeout=300) != 0:
        check.failed.append('the first lesrcnn-prepare-div2k run failed')


# --------------------------------------------- untrusted files: nothing runs, nothing explodes (issue 20)


def check_untrusted_files(check: Checker, root: Path) -> None:
    """The cases of docs/reliability.md, "Untrusted files: nothing runs, nothing explodes"."""
    sys.path.insert(0, str(REPO / 'tests'))
    from test_security_code import PickleCallsCode, ScriptedSetState, memory_bomb

    marker = root / 'code_ran'
    torch.jit.save(torch.jit.script(ScriptedSetState(str(marker))), str(root / 'model.pt'))
    torch.save({'weight': PickleCallsCode(marker)}, root / 'payload.pth')
    (root / 'evil.yml').write_text(f'network_g:\n  type: "os:system"\n  command: "touch {marker}"\n')
    memory_bomb(root / 'bomb.pth')
    (root / 'notes.pth').write_text('not weights\n')
    (root / 'x2.yml').write_text("network_g:\n  type: LESRCNN\n  upscale: '2'\n")
    (root / 'a_folder').mkdir()

    def no_marker(err: str) -> list[str]:
        return ['the payload ran (its marker file exists)'] if marker.exists() else []

    for tool in ('lesrcnn-count-flops', 'lesrcnn-measure-runtime'):
        for title, args, line in (
                ('A TorchScript archive', ['--weights', 'model.pt'],
                 'error: model.pt: is a TorchScript archive (it holds code/ or constants.pkl), refused: loading one '
                 'runs the code inside it; give the weights as a state dict (torch.save(model.state_dict(), path))'),
                ('A pickle calling os.system', ['--weights', 'payload.pth'],
                 'error: payload.pth: refuses to load global posix.system'),
                ('An options file whose network_g.type is os:system', ['-opt', 'evil.yml'],
                 "error: evil.yml: network_g.type: 'os:system' is not a registered network name; a file names "
                 'registered networks only (module:callable is given on the command line: --arch)'),
                ('A 280 KB checkpoint declaring 6 GB', ['--weights', 'bomb.pth'],
                 'error: bomb.pth: storage 0 declares 6,000,000,000 bytes but its record data/0 holds 280,004: a '
                 'corrupt or crafted file, refused before allocating')):
            check.run(f'{title} ({tool})', [tool, *args], 1,
                      lambda err, line=line: single_error(line)(err) + no_marker(err))
    for title, args, line in (
            ('A folder as weights', ['--weights', 'a_folder'], 'error: a_folder: is a folder, not a checkpoint file'),
            ("'' as weights", ['--weights', ''],
             "error: '': an empty name is neither a checkpoint file nor a weights name"),
            ('A text file as weights', ['--weights', 'notes.pth'],
             'error: notes.pth: not a PyTorch checkpoint: neither a zip archive nor a file written by torch.save'),
            ('NaN weights counted', ['--weights', 'nan.pth'],
             'error: nan.pth: non-finite weights (NaN or Inf) in refinement.to_rgb.weight'),
            ("upscale: '2' in network_g", ['-opt', 'x2.yml'], "error: x2.yml: network_g.upscale: '2' is a str, not an "
                                                              'integer')):
        check.run(title, ['lesrcnn-count-flops', *args], 1, single_error(line))
    with environment(LESRCNN_MAX_CHECKPOINT_BYTES='100000'):
        check.run('Tensors above LESRCNN_MAX_CHECKPOINT_BYTES', ['lesrcnn-count-flops', '--weights', 'w.pth'], 1,
                  single_error('error: w.pth: its tensors declare 159,456 bytes, above the limit of 100,000 (raise it '
                               'with LESRCNN_MAX_CHECKPOINT_BYTES=BYTES if the file is trusted to be that large)'))


# ------------------------------------------------------- faults during training keep what was there (issue 20)


def check_faults_during_training(check: Checker, root: Path) -> None:
    """The cases of docs/reliability.md, "Faults during training"."""
    sys.path.insert(0, str(REPO / 'tests'))
    from test_basicsr_train import write_div2k_like
    from test_security_training import TINY, corrupt_png, damage_value_size, truncate

    work = root / 'training'
    write_div2k_like(work, scales=(2,))
    options = str(REPO / 'options' / 'train_lesrcnn_x2.yml')
    train = ['lesrcnn-train', '-opt', options, '--force_yml', *TINY]
    models = work / 'experiments' / 'full' / 'models'
    check.run('Two iterations, a checkpoint after each', train + ['name=full', 'train:total_iter=2'], 0, cwd=work)
    before = {path: digest(path) for path in sorted(models.iterdir())}
    # No room for the next 2.5 MB checkpoint: a write past 1000 KiB fails, as on a full disk.
    limited = f'trap "" XFSZ; ulimit -f 1000; exec {shlex.join([str(BIN / train[0]), *train[1:]])} name=full ' \
              'train:total_iter=4 --auto_resume'
    check.run('A full disk while saving the third checkpoint (RLIMIT_FSIZE)', ['bash', '-c', limited], 1,
              lambda err: contains(f'lesrcnn-train: error: {models / "net_g_3.pth"}: File too large; not saved, the '
                                   'files saved before it are kept')(err)
              + unchanged(before) + ([] if sorted(models.iterdir()) == list(before) else ['files were added']),
              cwd=work)

    hr_db = work / 'datasets' / 'DIV2K' / 'DIV2K_train_HR_sub.lmdb'
    pristine = hr_db.parent / 'pristine.lmdb'
    shutil.copytree(hr_db, pristine)
    for title, damage, text in (
            ('A truncated data.mdb', truncate, 'data.mdb is truncated: 12288 bytes, its header counts 15 pages'),
            ('A damaged LMDB page', lambda db: damage_value_size(db, '0004_s001'),
             "data.mdb is damaged: page 2 has a value of 268435456 bytes at pages 9 to 65545, outside the file "
             "(pages 2 to 14) (at key '0004_s001')"),
            ('A corrupt PNG inside the LMDB, met mid-training', lambda db: corrupt_png(db, '0002_s001'),
             'DIV2K_train_HR_sub.lmdb[0002_s001]: not a readable image')):
        shutil.rmtree(hr_db)
        shutil.copytree(pristine, hr_db)
        damage(hr_db)
        check.run(title, train + ['name=damaged', 'train:total_iter=3'], 1, contains(text), cwd=work)

    (work / 'negative.yml').write_text(Path(options).read_text().replace('total_iter: 600000', 'total_iter: -5'))
    check.run('total_iter: -5', ['lesrcnn-train', '-opt', 'negative.yml'], 1,
              lambda err: contains('negative.yml: train.total_iter must be an integer of at least 1, got -5')(err)
              + (['experiments/ was created'] if (work / 'experiments' / 'train_LESRCNN_x2').exists() else []),
              cwd=work)
    torch.save({'params': torch.load(models / 'net_g_2.pth', weights_only=True)['params']}, work / 'weights.pth')
    check.run('Network weights as path.resume_state', train + ['name=w', 'path:resume_state=weights.pth'], 1,
              contains('weights.pth is network weights, not a BasicSR training state'), cwd=work)
    check.run('--cfg-options train_dataloader.batch_size=abc',
              ['lesrcnn-mmagic-train', 'lesrcnn:lesrcnn_x2_div2k', '--cfg-options', 'train_dataloader.batch_size=abc'],
              1, contains("train_dataloader.batch_size must be an integer of at least 1, got 'abc'"), cwd=work)
    (work / 'broken.yml').write_text('train: [unclosed\n')
    check.run('lesrcnn-measure-training on a broken YAML', ['lesrcnn-measure-training', '-opt', 'broken.yml'], 1,
              single_error("error: broken.yml: not valid YAML (expected ',' or ']', but got '<stream end>' at line 2, "
                           'column 1)'), cwd=work)


if __name__ == '__main__':
    sys.exit(main())
