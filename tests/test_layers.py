"""The package's layers point one way (issue 21): the import-linter contracts of pyproject.toml hold.

``[tool.importlinter]`` lists the layers, lowest last: networks and formats; data, inference and
counting; the framework integrations (and BasicSR's startup hook above them); the CLI. No module
imports from a layer above its own, no two sibling modules import each other in a cycle, and the two
lower layers (the core) import neither BasicSR, MMagic nor spandrel. docs/architecture.md draws them.
"""
from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip('importlinter', reason='import-linter comes with the "dev" extra')
from importlinter.cli import lint_imports  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / 'pyproject.toml'


def contracts() -> dict[str, dict]:
    settings = tomllib.loads(CONFIG.read_text(encoding='utf-8'))['tool']['importlinter']
    return {contract['id']: contract for contract in settings['contracts']}


def layer_modules(layer: str) -> list[str]:
    return [f'lesrcnn_plugin.{name.strip()}' for name in layer.replace('|', ':').split(':')]


def test_the_package_keeps_its_contracts(capsys):
    status = lint_imports(config_filename=str(CONFIG), no_cache=True, no_logo=True)
    assert status == 0, capsys.readouterr().out  # the report names each import that breaks a contract


def test_the_framework_free_core_is_the_two_lower_layers():
    """A module added to a lower layer is in the forbidden contract too: the two lists cannot drift apart."""
    layers = contracts()['layers']['layers']
    core = [module for layer in layers[-2:] for module in layer_modules(layer)]
    assert contracts()['framework-free-core']['source_modules'] == core


def test_an_upward_import_and_a_cycle_are_reported(tmp_path):
    """The contracts catch what they are for: a copy of the package with a network module importing the CLI,
    and two data modules importing each other."""
    shutil.copytree(REPO / 'lesrcnn_plugin', tmp_path / 'lesrcnn_plugin',
                    ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    shutil.copy(CONFIG, tmp_path / 'pyproject.toml')
    with open(tmp_path / 'lesrcnn_plugin' / 'key_map.py', 'a', encoding='utf-8') as handle:
        handle.write('\nfrom .cli import _common  # noqa: E402\n')
    with open(tmp_path / 'lesrcnn_plugin' / 'data' / 'subimages.py', 'a', encoding='utf-8') as handle:
        handle.write('\nfrom . import div2k  # noqa: E402\n')  # div2k imports subimages
    result = subprocess.run([sys.executable, '-c', 'import sys; from importlinter.cli import lint_imports; '
                             'sys.exit(lint_imports(no_cache=True, no_logo=True))'],
                            cwd=tmp_path, env={**os.environ, 'PYTHONPATH': str(tmp_path)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    report = ' '.join(result.stdout.split())
    assert 'lesrcnn_plugin.key_map -> lesrcnn_plugin.cli._common' in report
    assert 'lesrcnn_plugin.data. It could be made acyclic by removing 1 dependency: - .subimages -> .div2k' in report
    assert 'Contracts: 1 kept, 2 broken.' in report


def test_upscale_tensor_and_upscale_image_take_their_shared_arguments_alike():
    """One order, keyword-only after the input, so that a call reads the same for a tensor and an image."""
    from lesrcnn_plugin.inference import upscale_image, upscale_tensor

    tensor, image = (list(inspect.signature(function).parameters.values()) for function in (upscale_tensor,
                                                                                           upscale_image))
    assert [parameter.name for parameter in tensor[:2]] == ['network', 'x']
    assert [parameter.name for parameter in image[:2]] == ['network', 'image']
    assert [(parameter.name, parameter.kind, parameter.default) for parameter in tensor[2:]] == [
        (parameter.name, parameter.kind, parameter.default) for parameter in image[2:]]
    assert all(parameter.kind is inspect.Parameter.KEYWORD_ONLY for parameter in tensor[2:])
