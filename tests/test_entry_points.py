"""The BasicSR entry points live in the BasicSR integration, as MMagic's live in MMagic's (issue 21).

``python -m lesrcnn_plugin.basicsr.train`` / ``.test`` are the programs, ``lesrcnn-train`` / ``lesrcnn-test``
their console scripts; the old spelling ``python -m lesrcnn_plugin.train`` still runs them, for one
release, after a one-line deprecation notice on standard error.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip('basicsr', reason='the "basicsr" extra is not installed')
SETUP = (Path(__file__).resolve().parents[1] / 'setup.py').read_text(encoding='utf-8')


def test_python_m_lesrcnn_plugin_basicsr_train_is_the_program():
    result = subprocess.run([sys.executable, '-m', 'lesrcnn_plugin.basicsr.train', '--help'],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: lesrcnn-train') and '-opt YAML' in result.stdout


def test_console_scripts_run_the_integration_programs(capsys):
    from lesrcnn_plugin.cli import basicsr_commands

    assert basicsr_commands.test(['-opt', 'no_such_options.yml']) == 1
    assert capsys.readouterr().err == 'lesrcnn-test: error: option file no_such_options.yml not found\n'
    assert 'lesrcnn-train = lesrcnn_plugin.cli.basicsr_commands:train' in SETUP
    assert 'lesrcnn-test = lesrcnn_plugin.cli.basicsr_commands:test' in SETUP


@pytest.mark.parametrize('kind', ['train', 'test'])
def test_the_old_spelling_runs_the_program_after_one_deprecation_line(kind, tmp_path, capsys):
    old = importlib.import_module(f'lesrcnn_plugin.{kind}')
    missing = tmp_path / 'missing.yml'
    assert old.main(['-opt', str(missing)]) == 1
    deprecation, error = capsys.readouterr().err.splitlines()
    assert deprecation == (f'lesrcnn_plugin.{kind} is deprecated and goes in the next release: use '
                           f'python -m lesrcnn_plugin.basicsr.{kind} (or lesrcnn-{kind})')
    assert error.startswith(f'lesrcnn-{kind}: error: ') and str(missing) in error
