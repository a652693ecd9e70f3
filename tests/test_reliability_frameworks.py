"""The training entry points under bad options and data: typos in BasicSR options and MMagic configs
and LMDB keys that meta_info.txt lists but the database lacks, all caught before any folder is
created; and resuming MMagic training from another run's checkpoint, which must not delete that
run's files."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from test_reliability_data import delete_key, write_pair

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------- BasicSR entry points


@pytest.fixture
def basicsr_run(tmp_path, monkeypatch):
    """``run(options, *argv)``: lesrcnn-train on an options file written in ``tmp_path`` (the working
    directory); returns (exit status, whether BasicSR's pipeline was reached)."""
    pytest.importorskip('lesrcnn_plugin.basicsr')  # installs the alias BasicSR needs, then imports it
    from lesrcnn_plugin.basicsr import train
    from lesrcnn_plugin.basicsr import launch

    monkeypatch.chdir(tmp_path)
    root = write_pair(tmp_path / 'data')
    reached = []
    monkeypatch.setattr(launch, 'train_pipeline', lambda root_path: reached.append(root_path))

    def run(change=lambda opt: None, *argv: str) -> tuple[int, bool]:
        opt = yaml.safe_load((REPO / 'options' / 'train_lesrcnn_x2.yml').read_text())
        opt['datasets']['train'].update(dataroot_gt=str(root / 'HR_sub.lmdb'), dataroot_lq=str(root / 'LR_X2_sub.lmdb'))
        del opt['datasets']['val']
        change(opt)
        (tmp_path / 'opt.yml').write_text(yaml.safe_dump(opt))
        reached.clear()
        return train.main(['-opt', 'opt.yml', *argv]), bool(reached)

    run.root = root
    return run


def test_basicsr_options_are_checked_before_any_folder_exists(basicsr_run, tmp_path, capsys):
    assert basicsr_run() == (0, True)

    def set_network(**entries):
        return lambda opt: opt['network_g'].update(entries)

    cases = [
        (set_network(type='LESRCN'), "opt.yml: network_g.type 'LESRCN' is not a registered network; valid names: "
                                     'LESRCNN, '),
        (set_network(upscal=2), 'opt.yml: network_g.upscal is not an argument of LESRCNN; valid names: upscale, '),
        (lambda opt: opt.update(model_type='LESRCNNModle'), "opt.yml: model_type 'LESRCNNModle' is not a registered "
                                                            'model; valid names: LESRCNNModel, '),
        (lambda opt: opt['datasets']['train'].update(type='PairedImageDatset'),
         "opt.yml: datasets.train.type 'PairedImageDatset' is not a registered dataset; valid names: "
         'PairedImageDataset, '),
    ]
    for change, message in cases:
        assert basicsr_run(change) == (1, False)
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f'lesrcnn-train: error: {message}'), err
    # --force_yml is applied before the check, as BasicSR applies it.
    assert basicsr_run(lambda opt: None, '--force_yml', 'network_g:upscal=2') == (1, False)
    assert 'network_g.upscal is not an argument of LESRCNN' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data', 'opt.yml']  # no experiments/


def test_basicsr_lmdb_keys_are_checked_before_any_folder_exists(basicsr_run, tmp_path, capsys):
    delete_key(basicsr_run.root / 'LR_X2_sub.lmdb', '0003_s001')
    assert basicsr_run() == (1, False)
    lq = basicsr_run.root / 'LR_X2_sub.lmdb'
    assert capsys.readouterr().err.splitlines() == [
        f"lesrcnn-train: error: {lq}: key '0003_s001', listed in {lq / 'meta_info.txt'}, is not in the database "
        '(2 records); rebuild it (lesrcnn-prepare-div2k --overwrite) (datasets.train.dataroot_lq in opt.yml)']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['data', 'opt.yml']


def test_basicsr_paired_databases_must_list_the_same_keys(basicsr_run, capsys):
    write_pair(basicsr_run.root.parent / 'other', keys=('0001_s001', '0002_s001'))
    other = basicsr_run.root.parent / 'other' / 'LR_X2_sub.lmdb'
    assert basicsr_run(lambda opt: opt['datasets']['train'].update(dataroot_lq=str(other))) == (1, False)
    assert f"{other} and {basicsr_run.root / 'HR_sub.lmdb'} list different keys (e.g. '0003_s001')" in \
        capsys.readouterr().err


# ---------------------------------------------------------------------------- MMagic tools


@pytest.fixture
def mmagic_workspace(tmp_path, monkeypatch):
    pytest.importorskip('mmagic')
    from _training_runs import make_datasets

    make_datasets(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_mmagic_config_is_checked_before_any_folder_exists(mmagic_workspace, capsys):
    from lesrcnn_plugin.mmagic import train

    config = str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py')
    cases = [
        ('model.generator.type=LESRCN', "model.generator.type 'LESRCN' is not a registered network; valid names: "
                                        'LESRCNN, '),
        ('model.generator.upscal=2', 'model.generator.upscal is not an argument of LESRCNN; valid names: upscale, '),
        ('model.pixel_los.type=L1Loss', 'model.pixel_los is not an argument of BaseEditModel; valid names: '
                                        'pixel_loss, '),
    ]
    for option, message in cases:
        assert train.main([config, '--work-dir', 'work', '--cfg-options', option]) == 1
        err = capsys.readouterr().err.splitlines()
        assert err == [err[0]] and err[0].startswith(f'error: {config}: {message}'), err
    lr_db = mmagic_workspace / 'datasets' / 'DIV2K' / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'
    delete_key(lr_db, '0002_s001')
    assert train.main([config, '--work-dir', 'work']) == 1
    err = capsys.readouterr().err
    assert ("DIV2K_train_LR_bicubic_X2_sub.lmdb: key '0002_s001', listed in datasets/DIV2K/DIV2K_train_HR_sub.lmdb/"
            'meta_info.txt, is not in the database (2 records)') in err
    assert '(train_dataloader.dataset.pipeline in ' in err
    assert not (mmagic_workspace / 'work').exists()


def test_resuming_from_another_run_leaves_its_checkpoints_alone(tmp_path):
    """mmengine's CheckpointHook, resumed with another run's message hub, deletes that run's best
    checkpoint when it saves a better one, and iter_<id>.pth files for that run's ids in its own
    folder; KeepOtherRunsCheckpoints stops both."""
    pytest.importorskip('mmagic')
    from mmengine.hooks import CheckpointHook
    from mmengine.logging import MessageHub, MMLogger

    from lesrcnn_plugin.mmagic.train import KeepOtherRunsCheckpoints

    other, this = tmp_path / 'other_run', tmp_path / 'this_run'

    class Runner:
        """What the two hooks use of mmengine's Runner, after resuming from other_run/iter_2.pth."""
        epoch, iter = 0, 4

        def __init__(self, name):
            self.work_dir = str(this)
            self.logger = MMLogger.get_instance(name)
            self.message_hub = MessageHub.get_instance(name)
            for key, value in (('best_ckpt', str(other / 'best_PSNR_iter_2.pth')), ('best_score', 20.0),
                               ('last_ckpt', str(other / 'iter_2.pth')), ('keep_ckpt_ids', [2])):
                self.message_hub.update_info(key, value)
            self.checkpoint_hook = CheckpointHook(interval=2, by_epoch=False, save_best='PSNR', rule='greater',
                                                  max_keep_ckpts=1)
            self.hooks = [self.checkpoint_hook]

        def save_checkpoint(self, out_dir, filename, *args, **kwargs):
            Path(out_dir, filename).write_bytes(b'this run')

    def resumed_run(name: str, keep_other_runs: bool) -> None:
        for folder in (other, this):
            folder.mkdir(exist_ok=True)
        (other / 'best_PSNR_iter_2.pth').write_bytes(b'the other run\'s best')
        (this / 'iter_2.pth').write_bytes(b'an earlier file in this folder')
        runner = Runner(name)
        if keep_other_runs:
            KeepOtherRunsCheckpoints().before_train(runner)
        runner.checkpoint_hook.before_train(runner)
        runner.checkpoint_hook._save_checkpoint_with_step(runner, 4, {})
        runner.checkpoint_hook._save_best_checkpoint(runner, {'PSNR': 30.0})

    resumed_run('mmengine_alone', keep_other_runs=False)
    assert not (other / 'best_PSNR_iter_2.pth').exists() and not (this / 'iter_2.pth').exists()
    resumed_run('with_the_hook', keep_other_runs=True)
    assert (other / 'best_PSNR_iter_2.pth').read_bytes() == b'the other run\'s best'
    assert (this / 'iter_2.pth').read_bytes() == b'an earlier file in this folder'
    assert (this / 'best_PSNR_iter_4.pth').is_file() and (this / 'iter_4.pth').is_file()


def test_resuming_in_the_same_work_dir_keeps_mmengine_bookkeeping(tmp_path):
    pytest.importorskip('mmagic')
    from mmengine.logging import MessageHub, MMLogger

    from lesrcnn_plugin.mmagic.train import KeepOtherRunsCheckpoints

    hub = MessageHub.get_instance('same_run')
    hub.update_info('best_ckpt', str(tmp_path / 'best_PSNR_iter_2.pth'))
    hub.update_info('last_ckpt', str(tmp_path / 'iter_2.pth'))
    hub.update_info('keep_ckpt_ids', [2])
    runner = argparse.Namespace(work_dir=str(tmp_path), message_hub=hub, hooks=[],
                                logger=MMLogger.get_instance('same_run'))
    KeepOtherRunsCheckpoints().before_train(runner)
    assert hub.get_info('best_ckpt') == str(tmp_path / 'best_PSNR_iter_2.pth')
    assert hub.get_info('keep_ckpt_ids') == [2]
