"""BasicSR's own entry points run the shipped recipes once the package is installed (docs/basicsr.md).

The installed startup file ``lesrcnn_plugin_basicsr_hook.pth`` (setup.py) hooks the first import of
``basicsr``: torchvision alias before it, registration of the family after it. Checked here, each in
a fresh interpreter of this environment, as a user runs them:

* ``python -m basicsr.train`` / ``python -m basicsr.test`` on the installed BasicSR;
* ``python basicsr/train.py`` / ``basicsr/test.py`` from a BasicSR 1.4.2 source tree. No test may
  download, so the tree is built from the installed package: BasicSR's sdist holds the same
  ``basicsr/`` folder (the installed files are built from it unchanged), and BasicSR's README runs
  the scripts from the tree's root with the tree on ``PYTHONPATH``, so the tree's copy is imported;
* ``LESRCNN_NO_BASICSR_HOOK=1`` switches the hook off, and the hook imports nothing at startup.

Data: the shipped options, copied with their paths pointed at tiny generated LMDBs and images, 2
iterations. ``python -m basicsr.train`` puts ``experiments/`` beside the installed ``basicsr`` folder
(BasicSR's root is the folder above its scripts): the run gets a unique name and is removed after.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
import yaml
from test_basicsr_train import logged_iterations, write_div2k_like

REPO = Path(__file__).resolve().parents[1]
HOOK_PTH = 'lesrcnn_plugin_basicsr_hook.pth'
REINSTALL = 'reinstall the package (pip install --no-build-isolation -e .) to get it'


def installed_basicsr() -> Path:
    """The installed ``basicsr`` package folder, found without importing it."""
    import importlib.util

    return Path(importlib.util.find_spec('basicsr').origin).parent


def test_the_startup_file_is_installed_and_imports_nothing_heavy():
    site_packages = Path(sysconfig.get_paths()['purelib'])
    assert (site_packages / HOOK_PTH).is_file(), f'{HOOK_PTH} is not in {site_packages}: {REINSTALL}'
    code = 'import sys; print(sorted(m for m in ("torch", "basicsr", "torchvision", "numpy") if m in sys.modules)); ' \
           'print([type(f).__name__ for f in sys.meta_path][:1])'
    on = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split('\n')
    assert on[:2] == ['[]', "['BasicSRImportHook']"]
    off = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                         env={**os.environ, 'LESRCNN_NO_BASICSR_HOOK': '1'}).stdout.split('\n')
    assert off[1] != "['BasicSRImportHook']"


def registry_check(env: dict | None = None) -> subprocess.CompletedProcess:
    code = ('import importlib.util\n'
            'assert importlib.util.find_spec("basicsr")  # a probe, as extras checks do, leaves the hook armed\n'
            'import basicsr\n'
            'from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY\n'
            'print(all(n in ARCH_REGISTRY for n in ("LESRCNN", "MultiScaleLESRCNN", "DualKernelLESRCNN")),\n'
            '      "LESRCNNModel" in MODEL_REGISTRY,\n'
            '      all(n in DATASET_REGISTRY for n in ("MultiScalePairedImageDataset", "RawLMDBPairedImageDataset",\n'
            '                                          "RawLMDBMultiScalePairedImageDataset")))\n')
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow  # two fresh interpreters importing basicsr
def test_importing_basicsr_registers_the_family_unless_switched_off():
    result = registry_check()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ['True', 'True', 'True']
    # Off: BasicSR is on its own again, and basicsr 1.4.2 fails on this torchvision as without the package.
    off = registry_check({**os.environ, 'LESRCNN_NO_BASICSR_HOOK': '1'})
    assert off.returncode != 0 and "No module named 'torchvision.transforms.functional_tensor'" in off.stderr


def options_copy(shipped: str, destination: Path, name: str, data: Path, **changes) -> Path:
    """The shipped option file with its data under ``data``, the given ``name`` and a 2-iteration run."""
    opt = yaml.safe_load((REPO / 'options' / shipped).read_text())
    opt['name'] = name
    for dataset in opt['datasets'].values():
        for key in ('dataroot_gt', 'dataroot_lq'):
            dataset[key] = str(data / dataset[key])
        if 'batch_size_per_gpu' in dataset:  # the training set
            dataset.update(batch_size_per_gpu=2, num_worker_per_gpu=0, gt_size=16)
    for section, values in changes.items():
        opt.setdefault(section, {}).update(values)
    destination.write_text(yaml.safe_dump(opt))
    return destination


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('data')
    write_div2k_like(root, scales=(2,))
    return root


def run_basicsr(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, f'{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return result


def train_then_test(launch: list[str], root: Path, cwd: Path, data: Path, env: dict | None = None) -> None:
    """Train 2 iterations with BasicSR's train script, then test the checkpoint with its test script.

    ``launch`` is ``[python, -m, basicsr.{}]`` or ``[python, basicsr/{}.py]``; ``root`` is BasicSR's
    root for that spelling, where ``experiments/`` and ``results/`` appear.
    """
    name = f'entry_{uuid.uuid4().hex[:8]}'
    train_options = options_copy('train_lesrcnn_x2.yml', cwd / 'train.yml', f'train_{name}', data,
                                 train={'total_iter': 2}, val={'val_freq': 2},
                                 logger={'print_freq': 1, 'save_checkpoint_freq': 2, 'use_tb_logger': False})
    experiment = root / 'experiments' / f'train_{name}'
    results = root / 'results' / f'test_{name}'
    try:
        run_basicsr([*(part.format('train') for part in launch), '-opt', str(train_options)], cwd, env)
        log, = experiment.glob('train_*.log')
        assert [row['iter'] for row in logged_iterations(log)] == [1, 2]
        assert 'Validation Set5' in log.read_text()
        checkpoint = experiment / 'models' / 'net_g_2.pth'
        assert checkpoint.is_file()

        test_options = yaml.safe_load((REPO / 'options' / 'test_lesrcnn_x2.yml').read_text())
        set5 = test_options['datasets']['test_1']
        test_options['datasets'] = {'test_1': {**set5, 'dataroot_gt': str(data / set5['dataroot_gt']),
                                               'dataroot_lq': str(data / set5['dataroot_lq'])}}
        test_options['name'] = f'test_{name}'
        test_options['path']['pretrain_network_g'] = str(checkpoint)
        (cwd / 'test.yml').write_text(yaml.safe_dump(test_options))
        run_basicsr([*(part.format('test') for part in launch), '-opt', str(cwd / 'test.yml')], cwd, env)
        log, = results.glob('test_*.log')
        assert 'Validation Set5' in log.read_text() and '# psnr:' in log.read_text()
        assert len(list((results / 'visualization' / 'Set5').glob('*.png'))) == 2
    finally:
        for folder in (experiment, results):
            shutil.rmtree(folder, ignore_errors=True)
            if folder.parent.is_dir() and not any(folder.parent.iterdir()):
                folder.parent.rmdir()  # BasicSR's experiments/ or results/ beside the installed package


@pytest.mark.slow
def test_python_m_basicsr_train_and_test_run_the_shipped_options(tmp_path, data):
    train_then_test([sys.executable, '-m', 'basicsr.{}'], installed_basicsr().parent, tmp_path, data)


@pytest.mark.slow
def test_scripts_of_a_basicsr_source_tree_run_the_shipped_options(tmp_path, data):
    tree = tmp_path / 'BasicSR'
    shutil.copytree(installed_basicsr(), tree / 'basicsr', ignore=shutil.ignore_patterns('__pycache__'))
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(tree), os.environ.get('PYTHONPATH')]))}
    train_then_test([sys.executable, 'basicsr/{}.py'], tree, tree, data, env)
