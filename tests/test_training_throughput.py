"""``lesrcnn-measure-training`` on generated DIV2K-like LMDBs: the JSON report's structure (never its
timings, which depend on the machine's load), for a BasicSR options file and an MMagic config, its
errors, and ``tools/gpu_training_check.sh`` in its CPU quick mode (which measures the MMagic config)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from lesrcnn_plugin.cli.measure_training import main
from lesrcnn_plugin.training_throughput.measure import (LoaderRow, LoopRow, Recipe, StepRow, StepSetting, measure_steps,
                                                        project, step_settings)
from lesrcnn_plugin.training_throughput.report import warmup_suspects

from test_basicsr_train import write_div2k_like  # noqa: E402
from test_raw_storage import convert_all  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUICK = ['--device', 'cpu', '--workers', '1', '--loader-batches', '1', '--step-rounds', '1', '--precisions', 'fp32',
         '--format', 'json', '--quiet']


def small_options(root: Path, **train_set) -> Path:
    """The shipped x2 options with patches and batch that fit the generated 48x48 images."""
    opt = yaml.safe_load((REPO / 'options' / 'train_lesrcnn_x2.yml').read_text())
    opt['datasets']['train'].update(gt_size=16, batch_size_per_gpu=2, num_worker_per_gpu=1, **train_set)
    path = root / 'train_x2_small.yml'
    path.write_text(yaml.safe_dump(opt))
    return path


@pytest.fixture
def div2k_cwd(tmp_path, monkeypatch) -> Path:
    write_div2k_like(tmp_path, scales=(2,))
    convert_all(tmp_path)
    monkeypatch.chdir(tmp_path)  # the options' dataroots are relative to the working directory
    return tmp_path


def check_report(report: dict, framework: str, batch: int, lq_patch: int, iters: int = 3) -> None:
    assert report['recipe']['framework'] == framework
    recipe = report['recipe']
    assert (recipe['batch'], recipe['lq_patch'], recipe['scales']) == (batch, lq_patch, [2])
    assert report['recipe']['total_iter'] == 600000 and report['recipe']['setting'] == 'fp32'
    measured = {(row['storage'], row['workers']) for row in report['loader']}
    assert measured == {(storage, workers) for storage in ('png', 'raw') for workers in (0, 1)}
    assert all(row['samples_per_s'] > 0 for row in report['loader'])
    assert [row['workers'] for row in report['loader_speedup']] == [0, 1]
    assert {row['setting'] for row in report['step']} == {'fp32', 'fp32 channels_last'}
    for row in report['step']:
        assert row['device'] == 'cpu' and row['ms_per_iter'] > 0 and row['loss_ok'] and len(row['losses']) == 3
    assert [row['setting'] for row in report['skipped']] == ['compiled settings']
    assert [row['storage'] for row in report['loop']] == ['png', 'raw']
    assert all(row['ms_per_iter'] > 0 and row['data_ms_per_iter'] >= 0 and row['iters'] == iters for row in report['loop'])
    projection = report['projection']
    assert projection['total_iter'] == 600000 and projection['hours'] > 0 and projection['storage'] == 'png'
    assert projection['bottleneck'] in ('data', 'step')
    assert [p['storage'] for p in report['projections']] == ['png', 'raw']


@pytest.mark.slow
def test_basicsr_report(div2k_cwd, capsys):
    options = small_options(div2k_cwd)
    assert main(['-opt', str(options), '--iters', '3', '--output', 'report.json', *QUICK]) == 0
    check_report(json.loads((div2k_cwd / 'report.json').read_text()), 'basicsr', batch=2, lq_patch=8)
    assert capsys.readouterr().out == ''  # --quiet: the report only in the file


def test_basicsr_report_from_raw_options_finds_the_png_twin(div2k_cwd, capsys):
    options = small_options(div2k_cwd, type='RawLMDBPairedImageDataset',
                            dataroot_gt='datasets/DIV2K/DIV2K_train_HR_sub_raw.lmdb',
                            dataroot_lq='datasets/DIV2K/DIV2K_train_LR_bicubic_X2_sub_raw.lmdb')
    assert main(['-opt', str(options), '--iters', '0', '--format', 'markdown', '--device', 'cpu', '--workers', '0',
                 '--loader-batches', '1', '--step-rounds', '1', '--precisions', 'bf16', '--batch', '1']) == 0
    out = capsys.readouterr().out
    assert 'Recipe: batch 1, LR patch 8 (HR 16), 1 loader workers, 600,000 iterations, step fp32, raw storage.' in out
    assert '| workers | png samples/s | raw samples/s | raw / png |' in out
    assert '| cpu | bf16 autocast | x2 |' in out and '| raw |' in out  # the recipe's own storage first
    assert "the recipe's step setting (fp32) was not timed" in out and 'batch 1 instead of the recipe' in out


def test_mmagic_config_report_in_process(tmp_path, monkeypatch, capsys):
    """The MMagic side (``mmagic/throughput.py``) in the quick set: loader and one step timed, no loop;
    the full report is checked through tools/gpu_training_check.sh in ``make test``."""
    pytest.importorskip('mmagic')
    from test_mmagic_configs import make_datasets
    make_datasets(tmp_path, hr_size=136)
    convert_all(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(['--config', str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'), '--iters', '0', '--batch', '1',
                 '--device', 'cpu', '--workers', '0', '--loader-batches', '1', '--step-rounds', '1',
                 '--precisions', 'fp32', '--format', 'json', '--output', 'report.json', '--quiet']) == 0
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['recipe']['framework'] == 'mmagic' and report['recipe']['lq_patch'] == 64
    assert {row['storage'] for row in report['loader']} == {'png', 'raw'}
    assert all(row['samples_per_s'] > 0 for row in report['loader'])
    assert all(row['loss_ok'] and row['ms_per_iter'] > 0 for row in report['step'])
    assert report['loop'] == [] and capsys.readouterr().out == ''


def test_missing_databases_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(['-opt', str(REPO / 'options' / 'train_lesrcnn_x2.yml'), '--device', 'cpu']) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and 'no training databases found' in err and err.count('\n') == 1
    assert main(['--config', str(tmp_path / 'missing.py'), '--device', 'cpu']) == 1
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'missing.py'}: no such config file\n"


def test_every_step_setting_has_finite_decreasing_losses_on_cpu():
    """fp16 on CPU is far too slow at full size, hence skipped by the tool; at 8x8 it runs, and is checked."""
    recipe = Recipe('basicsr', 'test', 'LESRCNN', {'upscale': 2, 'num_feat': 16}, (2,), 2, 8, 10, 0, 1e-3,
                    (0.9, 0.999), 1e-8, 10.0, StepSetting(), 'png')
    rows, skipped = measure_steps(recipe, step_settings(False), 'cpu', rounds=2, slow_factor=float('inf'))
    assert not skipped
    assert {row.setting for row in rows} == {s.label for s in step_settings(False)}
    assert all(row.loss_ok for row in rows), [(row.setting, row.losses) for row in rows]


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu_in_quick_mode(tmp_path):
    result = subprocess.run(['bash', str(REPO / 'tools' / 'gpu_training_check.sh'), '--device', 'cpu', '--quick'],
                            capture_output=True, text=True, timeout=900, env={**os.environ, 'OUT': str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(tmp_path.glob('*.failed')) and not list(tmp_path.glob('*.skipped')), result.stderr[-3000:]
    # The shipped x2 recipes (LR patch 64) at the script's quick settings: the MMagic report is checked
    # here in full, as test_basicsr_report checks BasicSR's in process.
    for framework in ('basicsr', 'mmagic'):
        report = json.loads((tmp_path / f'{framework}_x2.json').read_text())
        check_report(report, framework, batch=2, lq_patch=64, iters=2)
        assert (tmp_path / f'{framework}_x2.md').read_text().startswith('### Training throughput: LESRCNN x2')
    assert 'pixel for pixel equal' in (tmp_path / 'prepare.log').read_text()


def _recipe(batch: int, recipe_batch: int | None = None, workers: int = 1) -> Recipe:
    return Recipe('basicsr', 'x.yml', 'LESRCNN', {}, (2,), batch, 32, 1000, workers, 1e-4, (0.9, 0.999), 1e-8, 0.0,
                  StepSetting('fp32'), 'png', recipe_batch)


def test_projection_is_the_recipes_batch_or_scaled_and_labelled():
    loader = [LoaderRow('png', 0, 40.0, 8, 1.0), LoaderRow('png', 1, 80.0, 8, 1.0)]
    steps = [StepRow('cpu', 'fp32', 2, 100.0, 90.0, 110.0, [2.0, 1.0])]
    (own,), notes = project(_recipe(16), loader, steps, [])
    assert own.ms_per_iter == max(100.0, 16 / 80.0 * 1e3) and 'scaled' not in own.basis and not notes
    assert own.hours == pytest.approx(1000 * own.ms_per_iter / 3.6e6)
    # --batch 4 for a recipe of 16: every per-iteration time x4, and the report says it is an estimate.
    (scaled,), notes = project(_recipe(4, recipe_batch=16), loader, steps, [])
    assert scaled.ms_per_iter == pytest.approx(4 * max(100.0, 4 / 80.0 * 1e3))
    assert scaled.basis.endswith('scaled from batch 4 to 16') and 'an estimate' in notes[0]
    loop = [LoopRow('png', 5, 2, 50.0, 5.0)]
    (looped,), _ = project(_recipe(4, recipe_batch=16), loader, steps, loop)
    assert looped.ms_per_iter == pytest.approx(200.0) and 'real training loop' in looped.basis


def test_zero_worker_figure_far_below_one_worker_is_flagged_as_warm_up():
    rows = [LoaderRow('png', 0, 5.0, 8, 1.0), LoaderRow('png', 1, 80.0, 8, 1.0),
            LoaderRow('raw', 0, 60.0, 8, 1.0), LoaderRow('raw', 1, 90.0, 8, 1.0)]
    assert warmup_suspects(rows) == ['png']
    assert warmup_suspects([LoaderRow('png', 0, 8.1, 8, 1.0), LoaderRow('png', 1, 80.0, 8, 1.0)]) == []


def test_the_real_loop_never_spawns_more_workers_than_cpus(monkeypatch):
    from lesrcnn_plugin.training_throughput import sources

    monkeypatch.setattr(sources, 'cpu_count', lambda: 2)
    assert [sources.capped_workers(n) for n in (0, 1, 2, 8)] == [0, 1, 2, 2]
