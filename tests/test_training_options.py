"""The training speed switches of both frameworks, checked on CPU: channels_last gives the losses of
NCHW (within 1e-5, over a few steps), autocast and torch.compile give finite, decreasing losses, and
the loader switches of the options reach BasicSR's DataLoader."""
from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import lesrcnn_plugin.basicsr  # noqa: F401  (registers the model; installs the torchvision alias first)
from basicsr.models import build_model
from basicsr.utils.options import parse_options

REPO = Path(__file__).resolve().parents[1]
STEPS = 3


def basicsr_model(tmp_path, monkeypatch, *overrides: str):
    """LESRCNNModel of the shipped x2 options (CPU), with ``--force_yml`` overrides."""
    monkeypatch.setattr(sys, 'argv', ['lesrcnn-train', '-opt', str(REPO / 'options' / 'train_lesrcnn_x2.yml'),
                                      '--force_yml', 'num_gpu=0', *overrides])
    opt, _ = parse_options(str(tmp_path), is_train=True)
    torch.manual_seed(0)  # the same initial weights for every model
    return build_model(opt)


def basicsr_losses(model, steps: int = STEPS) -> list[float]:
    """Losses of ``steps`` optimisation steps on one fixed batch."""
    generator = torch.Generator().manual_seed(1)
    lq = torch.rand(2, 3, 12, 12, generator=generator)
    batch = {'lq': lq, 'gt': torch.nn.functional.interpolate(lq, scale_factor=2, mode='bicubic').clamp(0, 1)}
    losses = []
    for step in range(1, steps + 1):
        model.feed_data(batch)
        model.optimize_parameters(step)
        losses.append(model.log_dict['l_pix'])
    return losses


def conv3x3(network: torch.nn.Module) -> torch.nn.Conv2d:
    """A 3x3 convolution (1x1 weights are contiguous in every memory format)."""
    return next(m for m in network.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))


def decreasing(losses: list[float]) -> bool:
    return all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def test_basicsr_channels_last_gives_the_nchw_losses(tmp_path, monkeypatch):
    nchw = basicsr_model(tmp_path, monkeypatch)
    channels_last = basicsr_model(tmp_path, monkeypatch, 'train:channels_last=true')
    assert not nchw.channels_last and channels_last.channels_last
    assert conv3x3(channels_last.net_g).weight.is_contiguous(memory_format=torch.channels_last)
    reference, losses = basicsr_losses(nchw), basicsr_losses(channels_last)
    assert channels_last.lq.is_contiguous(memory_format=torch.channels_last)
    assert decreasing(reference)
    assert losses == pytest.approx(reference, abs=1e-5)


@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
def test_basicsr_autocast_losses_are_finite_and_decrease(tmp_path, monkeypatch, amp):
    model = basicsr_model(tmp_path, monkeypatch, f'train:amp={amp}', 'train:channels_last=true',
                          'network_g:num_feat=16')
    assert decreasing(basicsr_losses(model))


@pytest.mark.slow  # torch.compile: inductor writes and builds C++ kernels
def test_basicsr_compile_trains_a_compiled_view_and_keeps_the_checkpoint_keys(tmp_path, monkeypatch):
    eager = basicsr_model(tmp_path, monkeypatch, 'network_g:num_feat=8')
    compiled = basicsr_model(tmp_path, monkeypatch, 'network_g:num_feat=8', 'train:compile=true')
    assert compiled._train_net is not compiled.net_g and eager._train_net is eager.net_g
    assert list(compiled.net_g.state_dict()) == list(eager.net_g.state_dict())  # no _orig_mod. prefix
    losses, reference = basicsr_losses(compiled, steps=2), basicsr_losses(eager, steps=2)
    assert decreasing(losses)
    assert losses == pytest.approx(reference, abs=1e-5)


def test_basicsr_loader_switches_reach_the_dataloader(tmp_path, monkeypatch):
    from basicsr.data import build_dataloader, build_dataset

    from _training_runs import write_div2k_like
    write_div2k_like(tmp_path, scales=(2,))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', [
        'lesrcnn-train', '-opt', str(REPO / 'options' / 'train_lesrcnn_x2.yml'), '--force_yml', 'num_gpu=0',
        'datasets:train:pin_memory=true', 'datasets:train:persistent_workers=true', 'datasets:train:gt_size=16',
        'datasets:train:num_worker_per_gpu=1'])
    opt, _ = parse_options(str(tmp_path), is_train=True)
    dataset_opt = opt['datasets']['train']
    assert dataset_opt['prefetch_mode'] is None  # cuda: BasicSR's CUDAPrefetcher, which needs a GPU
    loader = build_dataloader(build_dataset(dataset_opt), dataset_opt, num_gpu=0)
    assert loader.pin_memory and loader.persistent_workers and loader.num_workers == 1


@pytest.fixture
def mmagic_x2():
    """MMagic's x2 model (from the shipped config), its optimiser wrapper and a fixed batch."""
    pytest.importorskip('mmagic')
    import lesrcnn_plugin.mmagic  # noqa: F401
    from mmagic.registry import MODELS
    from mmagic.structures import DataSample
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    init_default_scope('mmagic')
    cfg = Config.fromfile(str(REPO / 'configs' / 'lesrcnn' / 'lesrcnn_x2_div2k.py'))
    assert cfg.compile is False and cfg.train_dataloader.pin_memory is False  # the switches, off

    def build(hooks=()):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        for hook in hooks:
            hook.before_train(SimpleNamespace(model=model))
        return model, build_optim_wrapper(model, cfg.optim_wrapper)

    generator = torch.Generator().manual_seed(1)
    lq = (torch.rand(2, 3, 12, 12, generator=generator) * 255).round()
    gt = torch.nn.functional.interpolate(lq, scale_factor=2, mode='bicubic').clamp(0, 255).round()
    batch = dict(inputs=list(lq), data_samples=[DataSample(gt_img=g, metainfo=dict(scale=2)) for g in gt])
    return build, batch


def test_mmagic_channels_last_hook_gives_the_nchw_losses(mmagic_x2):
    from lesrcnn_plugin.mmagic import ChannelsLastHook
    build, batch = mmagic_x2
    losses = {}
    for name, hooks in (('nchw', ()), ('channels_last', (ChannelsLastHook(),))):
        model, optim_wrapper = build(hooks)
        losses[name] = [float(model.train_step(batch, optim_wrapper)['loss']) for _ in range(STEPS)]
    assert conv3x3(model.generator).weight.is_contiguous(memory_format=torch.channels_last)
    assert decreasing(losses['nchw'])
    assert losses['channels_last'] == pytest.approx(losses['nchw'], abs=1e-5)
