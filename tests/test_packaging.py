"""Packaging: the wheel (recipes, LICENSE, extras), recipes by name (``lesrcnn:NAME``) in the clone and
in an installed wheel, ``lesrcnn-recipes``, the commands that take a recipe name, the metafile, and
the one-line message of a command whose extra is missing."""
from __future__ import annotations

import email.parser
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from lesrcnn_plugin.cli import recipes as recipes_cli
from lesrcnn_plugin.cli._common import EXTRA_MODULES, MissingExtraError, require, requires_extras, run
from lesrcnn_plugin.recipes import RecipeError, find_recipe, list_recipes, recipe_root, resolve_recipe

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# What a source distribution is made from (setup.py finds the package; MANIFEST.in adds the recipes).
SOURCE_ITEMS = ('setup.py', 'pyproject.toml', 'MANIFEST.in', 'LICENSE', 'README.md', 'model-index.yml',
                'lesrcnn_plugin', 'options', 'configs')
BUILD_SECONDS = 60
RECIPE_FILES = sorted([*(REPO / 'options').glob('*.yml'), *(REPO / 'configs').rglob('*.py'),
                       *(REPO / 'configs').rglob('*.yml')])
# What mim reads from an installed package's .mim folder besides the configs (mim search / mim list).
MIM_FILES = [REPO / 'model-index.yml', *(REPO / 'configs').rglob('README.md')]
# The startup file behind BasicSR's own scripts (docs/basicsr.md), at the root of site-packages.
HOOK_PTH = 'lesrcnn_plugin_basicsr_hook.pth'
HOOK_LINE = 'import lesrcnn_plugin.basicsr_hook; lesrcnn_plugin.basicsr_hook.install()\n'


def subprocess_run(args, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    return result


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline as a user's pip builds it: sdist from the tree, then wheel from the sdist.

    The build runs on a copy of the sources (setuptools writes build/ and *.egg-info beside them) and
    must take less than BUILD_SECONDS.
    """
    root = tmp_path_factory.mktemp('build')
    source = root / 'source'
    source.mkdir()
    for item in SOURCE_ITEMS:
        if (REPO / item).is_dir():
            shutil.copytree(REPO / item, source / item,
                            ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', '*.egg-info'))
        else:
            shutil.copy2(REPO / item, source / item)
    deadline = time.monotonic() + BUILD_SECONDS
    subprocess_run([PYTHON, '-c', f'from setuptools import build_meta; build_meta.build_sdist({str(root / "sdist")!r})'],
                   timeout=BUILD_SECONDS, cwd=source)
    sdist, = (root / 'sdist').glob('lesrcnn_plugin-*.tar.gz')
    subprocess_run([PYTHON, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index',
                    '-w', str(root / 'wheel'), str(sdist)], timeout=max(1.0, deadline - time.monotonic()))
    built, = (root / 'wheel').glob('lesrcnn_plugin-*.whl')
    return built


def wheel_metadata(archive: zipfile.ZipFile):
    name, = (n for n in archive.namelist() if n.endswith('.dist-info/METADATA'))
    return email.parser.Parser().parsestr(archive.read(name).decode())


# ------------------------------------------------------------------------------------------- the wheel

@pytest.mark.slow
def test_wheel_holds_the_recipes_the_license_and_every_extra(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for path in RECIPE_FILES + MIM_FILES:
            packaged = f'lesrcnn_plugin/.mim/{path.relative_to(REPO).as_posix()}'
            assert packaged in names, f'{packaged} missing from the wheel'
            assert archive.read(packaged) == path.read_bytes()
        license_name, = (n for n in names if n.endswith('.dist-info/licenses/LICENSE'))
        assert archive.read(license_name) == (REPO / 'LICENSE').read_bytes()
        metadata = wheel_metadata(archive)
        entry_points = archive.read(next(n for n in names if n.endswith('.dist-info/entry_points.txt'))).decode()
    assert 'Apache License' in (REPO / 'LICENSE').read_text() and 'Version 2.0' in (REPO / 'LICENSE').read_text()
    assert metadata['License-Expression'] == 'Apache-2.0'
    extras = set(metadata.get_all('Provides-Extra'))
    assert {'onnx', 'plots'} <= extras
    assert set(EXTRA_MODULES) | {'all', 'dev'} <= extras, 'every extra the commands check for must be declared'
    assert 'lesrcnn-recipes = lesrcnn_plugin.cli.recipes:main' in entry_points
    assert not any(n.startswith(('options/', 'configs/', 'tests/')) for n in names), 'recipes go inside the package'
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read(HOOK_PTH).decode() == HOOK_LINE


@pytest.mark.slow
def test_editable_install_gets_the_startup_file_too(tmp_path):
    """setuptools' editable wheel (what ``pip install -e .`` and ``make setup`` install) carries the .pth."""
    source = tmp_path / 'source'
    source.mkdir()
    for item in SOURCE_ITEMS:
        if (REPO / item).is_dir():
            shutil.copytree(REPO / item, source / item, ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '.mim'))
        else:
            shutil.copy2(REPO / item, source / item)
    subprocess_run([PYTHON, '-c', f'from setuptools import build_meta; build_meta.build_editable({str(tmp_path / "w")!r})'],
                   timeout=BUILD_SECONDS, cwd=source)
    editable, = (tmp_path / 'w').glob('lesrcnn_plugin-*.editable-*.whl')
    with zipfile.ZipFile(editable) as archive:
        assert archive.read(HOOK_PTH).decode() == HOOK_LINE
        assert not any(n.startswith('lesrcnn_plugin/') for n in archive.namelist()), 'editable: the clone is the package'


@pytest.mark.slow
def test_mim_search_finds_the_models_of_an_installed_wheel(wheel, tmp_path):
    """``mim search lesrcnn-plugin`` reads lesrcnn_plugin/.mim/model-index.yml of the installed wheel."""
    pytest.importorskip('mim')
    site = tmp_path / 'site'
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    mim = Path(sys.executable).parent / 'mim'
    listing = subprocess_run([str(mim), 'search', 'lesrcnn-plugin'], timeout=120, cwd=tmp_path,
                             env={**os.environ, 'PYTHONPATH': str(site)}).stdout
    for k, psnr in ((2, '37.8091'), (3, '34.0301'), (4, '31.9253')):
        assert f'config id: lesrcnn_x{k}_div2k' in listing
        assert f'configs/lesrcnn/lesrcnn_x{k}_div2k.py' in listing and psnr in listing
    assert 'readme         configs/lesrcnn/README.md' in listing


def test_model_index_imports_the_metafile_whose_paths_exist():
    """mim search reads model-index.yml, which imports the metafile; its paths are relative to the index."""
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    assert index == {'Import': ['configs/lesrcnn/metafile.yml']}
    metafile = yaml.safe_load((REPO / index['Import'][0]).read_text())
    collection, = metafile['Collections']
    readme = REPO / collection['README']
    assert readme.is_file()
    text = readme.read_text()
    for model in metafile['Models']:
        assert (REPO / model['Config']).is_file()
        metrics = model['Results'][0]['Metrics']
        # The README's results table row of each model: its config and the metafile's Set5 figures.
        row = next(line for line in text.splitlines() if line.startswith(f"| [{model['Name']}]"))
        assert f"(./{Path(model['Config']).name})" in row
        assert f"| {metrics['PSNR']:.4f} | {metrics['SSIM']:.4f} |" in row


@pytest.mark.slow
def test_installed_wheel_reads_recipes_from_its_own_copies(wheel, tmp_path):
    """The wheel's files on PYTHONPATH, run from another folder: names resolve into lesrcnn_plugin/.mim."""
    site = tmp_path / 'site'
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    env = {**os.environ, 'PYTHONPATH': str(site)}
    code = ('import lesrcnn_plugin.recipes as r; print(r.__file__); '
            'print(r.resolve_recipe("lesrcnn:train_lesrcnn_x2")); print(r.resolve_recipe("lesrcnn:lesrcnn_x2_div2k"))')
    module, options, config = subprocess_run([PYTHON, '-c', code], timeout=120, cwd=elsewhere,
                                             env=env).stdout.split()
    mim = site / 'lesrcnn_plugin' / '.mim'
    assert Path(module).parent == site / 'lesrcnn_plugin'
    assert Path(options) == mim / 'options' / 'train_lesrcnn_x2.yml'
    assert Path(config) == mim / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'
    listing = subprocess_run([PYTHON, '-m', 'lesrcnn_plugin.cli.recipes', 'list'], timeout=120, cwd=elsewhere,
                             env=env).stdout
    assert 'lesrcnn:train_lesrcnn_x2' in listing and 'lesrcnn:lesrcnn_x2_div2k' in listing
    assert f'recipes folder: {mim}' in listing

    mmengine_config = pytest.importorskip('mmengine.config')
    # The _base_ files are found by relative path from the installed copy too.
    cfg = mmengine_config.Config.fromfile(config, import_custom_modules=False)
    assert cfg.model.generator.type == 'LESRCNN' and cfg.model.generator.upscale == 2
    assert cfg.train_cfg.max_iters == 600_000 and cfg.default_scope == 'mmagic'


# ------------------------------------------------------------------------------------ recipes by name

def test_names_resolve_to_the_clone_recipes_and_paths_pass_through():
    assert recipe_root() == REPO
    assert resolve_recipe('lesrcnn:train_lesrcnn_x2') == str(REPO / 'options' / 'train_lesrcnn_x2.yml')
    assert resolve_recipe('lesrcnn:lesrcnn_x3_div2k', kind='configs') == \
        str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x3_div2k.py')
    assert find_recipe('test_lesrcnn_x4.yml', kind='options').path == REPO / 'options' / 'test_lesrcnn_x4.yml'
    assert resolve_recipe('options/train_lesrcnn_x2.yml') == 'options/train_lesrcnn_x2.yml'
    assert resolve_recipe('/no/such/file.yml') == '/no/such/file.yml'  # a path is the caller's to check


def test_every_recipe_file_is_listed_and_base_files_are_not():
    listed = {(r.kind, r.path) for r in list_recipes()}
    expected = {('options', p) for p in (REPO / 'options').glob('*.yml')}
    expected |= {('configs', p) for p in (REPO / 'configs' / 'lesrcnn').glob('*.py')}
    assert listed == expected
    assert [r.name for r in list_recipes('options')] == sorted(p.stem for p in (REPO / 'options').glob('*.yml'))


@pytest.mark.parametrize('text, kind, message', [
    ('lesrcnn:train_lesrcn_x2', None, 'did you mean lesrcnn:train_lesrcnn_x2'),
    ('lesrcnn:lesrcnn_x2_div2k', 'options', 'lesrcnn:lesrcnn_x2_div2k is an MMagic config, not BasicSR options'),
    ('lesrcnn:train_lesrcnn_x2', 'configs', 'is BasicSR options, not an MMagic config'),
    ('lesrcnn:nothing_like_it', 'configs', 'no MMagic config named lesrcnn:nothing_like_it'),
])
def test_bad_names_are_config_errors_with_close_matches(text, kind, message):
    with pytest.raises(RecipeError, match=message):
        resolve_recipe(text, kind=kind)
    with pytest.raises(ValueError, match='kind must be one of'):
        resolve_recipe(text, kind='yaml')


def test_recipes_cli_list_show_and_copy(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert recipes_cli.main(['list']) == 0
    listing = capsys.readouterr().out
    assert all(f'lesrcnn:{r.name}' in listing for r in list_recipes())

    assert recipes_cli.main(['show', 'lesrcnn:train_lesrcnn_x2']) == 0
    assert capsys.readouterr().out == (REPO / 'options' / 'train_lesrcnn_x2.yml').read_text()
    assert recipes_cli.main(['show', '--path', 'lesrcnn_x2_div2k']) == 0
    assert capsys.readouterr().out.strip() == str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py')

    assert recipes_cli.main(['copy', 'train_lesrcnn_x2']) == 0
    assert (tmp_path / 'train_lesrcnn_x2.yml').read_bytes() == (REPO / 'options' / 'train_lesrcnn_x2.yml').read_bytes()
    assert recipes_cli.main(['copy', 'train_lesrcnn_x2', '.']) == 1
    assert 'exists' in capsys.readouterr().err
    (tmp_path / 'mine.yml').write_text('old')
    assert recipes_cli.main(['copy', 'train_lesrcnn_x2', 'mine.yml', '--overwrite']) == 0
    assert yaml.safe_load((tmp_path / 'mine.yml').read_text())['scale'] == 2
    (tmp_path / 'mine.yml').write_text('old')
    assert recipes_cli.main(['copy', 'train_lesrcnn_x2', 'mine.yml', '--force']) == 0  # deprecated, for one release
    assert 'deprecated' in capsys.readouterr().err and yaml.safe_load((tmp_path / 'mine.yml').read_text())['scale'] == 2
    shipped = REPO / 'options' / 'train_lesrcnn_x2.yml'
    before = shipped.read_bytes()
    assert recipes_cli.main(['copy', 'train_lesrcnn_x2', str(shipped.parent), '--overwrite']) == 1
    assert 'an input is never overwritten' in capsys.readouterr().err and shipped.read_bytes() == before

    assert recipes_cli.main(['show', 'train_lesrcnn']) == 1
    assert capsys.readouterr().err.count('\n') == 1  # one line


def test_listing_and_showing_recipes_does_not_import_torch(tmp_path):
    # Listing names is instant only if nothing on the way imports torch (9 to 11 s on a loaded machine).
    code = ('import sys; from lesrcnn_plugin.cli.recipes import main; '
            'codes = [main(["list"]), main(["show", "--path", "lesrcnn:train_lesrcnn_x2"])]; '
            'print(codes, "torch" in sys.modules)')
    result = subprocess_run([PYTHON, '-c', code], timeout=120, cwd=tmp_path)
    assert result.stdout.splitlines()[-1] == '[0, 0] False'


def test_recipes_cli_copies_an_mmagic_config_with_its_base_merged(tmp_path, capsys):
    mmengine_config = pytest.importorskip('mmengine.config')
    assert recipes_cli.main(['copy', 'lesrcnn:lesrcnn_x4_div2k', str(tmp_path)]) == 0
    copied = tmp_path / 'lesrcnn_x4_div2k.py'
    assert '_base_' not in mmengine_config.Config.fromfile(str(copied), import_custom_modules=False)
    original = mmengine_config.Config.fromfile(str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x4_div2k.py'),
                                               import_custom_modules=False)
    copy = mmengine_config.Config.fromfile(str(copied), import_custom_modules=False)
    assert copy.to_dict() == original.to_dict()


def test_count_flops_takes_recipe_names(capsys):
    from lesrcnn_plugin.cli.count_flops import main

    assert main(['-opt', 'lesrcnn:train_dual_kernel_lesrcnn_x2', '--lr-size', '16x16']) == 0
    assert 'DualKernelLESRCNN' in capsys.readouterr().out
    assert main(['-opt', 'lesrcnn:lesrcnn_x2_div2k']) == 1
    assert 'is an MMagic config, not BasicSR options' in capsys.readouterr().err
    pytest.importorskip('mmengine')
    assert main(['--config', 'lesrcnn:lesrcnn_x3_div2k', '--lr-size', '16x16']) == 0
    assert 'x3' in capsys.readouterr().out


@pytest.mark.slow
def test_basicsr_commands_take_recipe_names(tmp_path):
    """The name reaches BasicSR's own command line as the file (shown by an option it rejects)."""
    if importlib.util.find_spec('basicsr') is None:
        pytest.skip('basicsr is not installed (the "basicsr" extra)')
    result = subprocess.run([PYTHON, '-m', 'lesrcnn_plugin.basicsr.train', '-opt', 'lesrcnn:train_lesrcnn_x2',
                             '--force_yml', 'nosuch:section:key=1'], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert f'{REPO / "options" / "train_lesrcnn_x2.yml"} has no section nosuch' in result.stderr
    result = subprocess.run([PYTHON, '-m', 'lesrcnn_plugin.basicsr.test', '-opt', 'lesrcnn:test_lesrcn_x3'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and 'did you mean lesrcnn:test_lesrcnn_x3' in result.stderr


@pytest.mark.slow
def test_mmagic_test_tool_takes_a_recipe_name(tmp_path):
    """``lesrcnn-mmagic-test lesrcnn:lesrcnn_x2_div2k CKPT`` on generated benchmark folders."""
    pytest.importorskip('mmagic')
    from test_mmagic_configs import make_datasets
    from test_mmagic_runner import run as run_checked

    from lesrcnn_plugin.archs import LESRCNN
    from lesrcnn_plugin.checkpoint import save_checkpoint

    make_datasets(tmp_path)
    weights = tmp_path / 'lesrcnn_x2_mmagic.pth'
    save_checkpoint(LESRCNN(upscale=2).state_dict(), weights, 'mmagic')
    run_checked([PYTHON, str(REPO / 'tools' / 'test.py'), 'lesrcnn:lesrcnn_x2_div2k', str(weights),
                 '--work-dir', str(tmp_path / 'work'), '--out', str(tmp_path / 'metrics.json'),
                 '--cfg-options', *[f'test_dataloader.{i}.num_workers=0' for i in range(4)]], tmp_path)
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    assert {'Set5x2/PSNR', 'Urban100x2/SSIM'} <= set(metrics)


# -------------------------------------------------------------------------------------------- metafile

def test_metafile_names_configs_weights_and_the_measured_set5_figures():
    from lesrcnn_plugin.archs import LESRCNN
    from lesrcnn_plugin.weights import WEIGHTS

    # MMagic's float metric with the authors' weights, as tests/test_mmagic_runner.py measures it.
    set5 = {2: (37.8091, 0.9599), 3: (34.0301, 0.9245), 4: (31.9253, 0.8917)}
    metafile = yaml.safe_load((REPO / 'configs' / 'lesrcnn' / 'metafile.yml').read_text())
    collection, = metafile['Collections']
    models = {model['Name']: model for model in metafile['Models']}
    assert sorted(models) == [f'lesrcnn_x{k}_div2k' for k in set5]
    for k, (psnr, ssim) in set5.items():
        model = models[f'lesrcnn_x{k}_div2k']
        assert model['In Collection'] == collection['Name']
        assert (REPO / model['Config']).is_file() and Path(model['Config']).stem == model['Name']
        assert model['Weights'] in WEIGHTS and WEIGHTS[model['Weights']].scale == k
        result, = model['Results']
        assert result['Task'] and result['Dataset'] == 'Set5'
        assert result['Metrics'] == {'PSNR': psnr, 'SSIM': ssim}
        assert model['Metadata']['Parameters'] == sum(p.numel() for p in LESRCNN(upscale=k).parameters())


# ----------------------------------------------------------------------------------- missing extras

def test_require_names_the_extra_to_install(monkeypatch):
    require('onnx', 'sys')  # installed: nothing happens
    monkeypatch.setitem(sys.modules, 'onnxruntime', None)  # find_spec then reports it missing
    with pytest.raises(MissingExtraError) as error:
        require('onnx', needed_by='lesrcnn-export-onnx')
    assert str(error.value) == ('lesrcnn-export-onnx needs the "onnx" extra (onnxruntime is not installed): '
                                'pip install "lesrcnn-plugin[onnx]"')
    assert run(lambda: require('onnx')) == 1


def test_command_without_its_extra_stops_first_with_one_line(monkeypatch, tmp_path, capsys):
    from lesrcnn_plugin.cli import export_onnx, mmagic_commands

    monkeypatch.setitem(sys.modules, 'onnxruntime', None)
    assert export_onnx.main(['lesrcnn_x2', str(tmp_path / 'x2.onnx')]) == 1
    assert capsys.readouterr().err == ('error: lesrcnn-export-onnx needs the "onnx" extra (onnxruntime is not '
                                       'installed): pip install "lesrcnn-plugin[onnx]"\n')
    assert not (tmp_path / 'x2.onnx').exists()

    monkeypatch.setitem(sys.modules, 'mmcv', None)
    assert mmagic_commands.train(['--help']) == 1  # before argparse: the program's module imports MMagic
    assert 'lesrcnn-mmagic-train needs the "mmagic" extra' in capsys.readouterr().err

    called = []
    checked = requires_extras('demo', 'basicsr', command='lesrcnn-demo')(lambda argv=None: called.append(argv) or 0)
    monkeypatch.setitem(sys.modules, 'skimage', None)
    assert checked([]) == 1 and not called
    assert '"demo" extra (skimage is not installed)' in capsys.readouterr().err
