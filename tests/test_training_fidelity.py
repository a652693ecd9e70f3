"""Both frameworks train step for step as the authors' trainer does (hellloxiaotian/LESRCNN,
``x2/solver.py``), and their schedules and LESRCNN-S scale draws follow it (issue 22, parts 1-2).

* Step equivalence: from the same weights and LR/HR batches, 3 steps of BasicSR's
  ``LESRCNNModel.optimize_parameters`` (built from the shipped options), of MMagic's ``train_step``
  (built from the shipped config) and of ``authors_steps`` below give the same weights (max abs
  difference <= 1e-6, fp32); the first step's gradient norm exceeds 10, so clipping acts. LESRCNN x2,
  the dual-kernel network and LESRCNN-S (at the scales drawn for those iterations).
* Schedules: over 600k iterations, each recipe's scheduler object, stepped as its framework steps
  it, gives ``1e-4 * 0.5 ** (it // 400000)`` for the ``it``-th update (0-based).
* LESRCNN-S scale draw: uniform over {2, 3, 4} over 10,000 iterations, and the same after a resume.
  (The same on every rank: ``test_distributed_training.py``.)

Where the recipes deliberately differ from the authors, the test says so (``docs/reproducibility.md``
lists them side by side).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import lesrcnn_plugin.basicsr  # noqa: F401  (registers the family; installs the torchvision alias first)
from basicsr.models import build_model
from basicsr.utils.options import parse_options
from lesrcnn_plugin.archs import ARCHS
from lesrcnn_plugin.basicsr.lesrcnn_model import draw_scale

REPO = Path(__file__).resolve().parents[1]
STEPS = 3
LR_SIZE = 12
TOLERANCE = 1e-6
# The authors' command line (README: x2/train.py --patch_size 64 --batch_size 64 --max_steps 600000
# --decay 400000; train.py: --lr 1e-4 --clip 10 --loss_fn MSE).
AUTHORS = {'lr': 1e-4, 'decay': 400_000, 'max_steps': 600_000, 'clip': 10.0, 'batch': 64, 'patch': 64}

# (BasicSR options, MMagic config, network class, its arguments)
RECIPES = {
    'lesrcnn_x2': ('train_lesrcnn_x2.yml', 'lesrcnn_x2_div2k.py', 'LESRCNN', {'upscale': 2}),
    'dual_kernel_x2': ('train_dual_kernel_lesrcnn_x2.yml', 'dual_kernel_lesrcnn_x2_div2k.py', 'DualKernelLESRCNN',
                       {'upscale': 2}),
    'multiscale': ('train_multiscale_lesrcnn.yml', 'multiscale_lesrcnn_div2k.py', 'MultiScaleLESRCNN',
                   {'scales': [2, 3, 4]}),
}


def authors_steps(net: nn.Module, batches, lr0=AUTHORS['lr'], decay=AUTHORS['decay'], clip=AUTHORS['clip']):
    """The authors' ``Solver.fit`` loop body, in today's torch; returns each step's gradient norm."""
    loss_fn = nn.MSELoss()
    optim = torch.optim.Adam(filter(lambda p: p.requires_grad, net.parameters()), lr0)
    norms = []
    for step, (lr, hr, scale) in enumerate(batches):
        sr = net(lr, scale) if scale is not None else net(lr)
        loss = loss_fn(sr, hr)
        optim.zero_grad()
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(net.parameters(), clip)))
        optim.step()
        for group in optim.param_groups:  # set after the step, from the count before it is increased
            group['lr'] = lr0 * 0.5 ** (step // decay)
    return norms


def make_batches(scales: list[int], seed: int = 0):
    """``STEPS`` batches of 2 uint8-valued LR/HR pairs per scale (exact in MMagic's x/255 too)."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(STEPS):
        batch = {}
        for k in scales:
            batch[k] = (torch.from_numpy(rng.integers(0, 256, (2, 3, LR_SIZE, LR_SIZE))).float(),
                        torch.from_numpy(rng.integers(0, 256, (2, 3, LR_SIZE * k, LR_SIZE * k))).float())
        batches.append(batch)
    return batches


def initial_network(recipe: str) -> nn.Module:
    """The network's default initialisation with every trained convolution times 2.2: the gradient norm
    of the first step is then 80-200 (0.01 without), so that clipping at 10 acts."""
    _, _, arch, kwargs = RECIPES[recipe]
    torch.manual_seed(0)
    net = ARCHS[arch](**kwargs)
    with torch.no_grad():
        for param in net.parameters():
            if param.requires_grad and param.dim() == 4:
                param.mul_(2.2)
    return net


def basicsr_model(options: str, tmp_path, monkeypatch, *overrides: str):
    monkeypatch.setattr(sys, 'argv', ['lesrcnn-train', '-opt', str(REPO / 'options' / options), '--force_yml', 'num_gpu=0',
                                      *overrides])
    opt, _ = parse_options(str(tmp_path), is_train=True)
    return build_model(opt)


def mmagic_parts(config: str):
    """The model, optimizer wrapper and parameter scheduler of an MMagic config, as its Runner builds them."""
    pytest.importorskip('mmagic')
    import lesrcnn_plugin.mmagic  # noqa: F401
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS, init_default_scope

    from mmagic.registry import MODELS
    init_default_scope('mmagic')
    cfg = Config.fromfile(str(REPO / 'configs' / 'lesrcnn' / config))
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    scheduler = PARAM_SCHEDULERS.build(cfg.param_scheduler, default_args={'optimizer': wrapper})
    return cfg, model, wrapper, scheduler


def max_difference(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[key] - sb[key]).abs().max()) for key in sa)


@pytest.mark.parametrize('recipe', list(RECIPES))
def test_one_step_is_the_authors_step_in_both_frameworks(recipe, tmp_path, monkeypatch):
    options, config, _, _ = RECIPES[recipe]
    multiscale = recipe == 'multiscale'
    scales = [2, 3, 4] if multiscale else [2]
    batches = make_batches(scales)

    # BasicSR: the loop of basicsr.train.train_pipeline (update_learning_rate, feed_data, optimize_parameters).
    model = basicsr_model(options, tmp_path, monkeypatch)
    model.net_g.load_state_dict(initial_network(recipe).state_dict())
    drawn, basicsr_norms = [], []
    for current_iter, batch in enumerate(batches, start=1):
        model.update_learning_rate(current_iter, warmup_iter=-1)
        if multiscale:
            model.feed_data({f'{key}_x{k}': pair[i] / 255. for k, pair in batch.items() for i, key in enumerate(('lq', 'gt'))})
        else:
            model.feed_data({'lq': batch[2][0] / 255., 'gt': batch[2][1] / 255.})
        model.optimize_parameters(current_iter)
        drawn.append(model.log_dict.get('scale'))
        basicsr_norms.append(model.log_dict['grad_norm'])
    if multiscale:  # LESRCNNModel's draw for these iterations, with the options' manual_seed
        assert drawn == [draw_scale(scales, model.opt['manual_seed'], it) for it in range(1, STEPS + 1)]
    step_scales = drawn if multiscale else [None] * STEPS

    # The authors' step, on the pairs of the scales drawn.
    reference = initial_network(recipe)
    pairs = [(b[k or 2][0] / 255., b[k or 2][1] / 255., k) for b, k in zip(batches, step_scales)]
    norms = authors_steps(reference, pairs)
    assert norms[0] > AUTHORS['clip'], f'clipping must act on the first step (gradient norm {norms[0]:.3g})'
    unclipped = initial_network(recipe)
    authors_steps(unclipped, pairs, clip=float('inf'))
    assert max_difference(unclipped, reference) > 100 * TOLERANCE, 'clipping must change the outcome'
    np.testing.assert_allclose(basicsr_norms, norms, rtol=1e-5)
    assert max_difference(model.net_g, reference) <= TOLERANCE

    # MMagic: model.train_step, then the scheduler step of ParamSchedulerHook.after_train_iter.
    from mmagic.structures import DataSample
    _, mm_model, wrapper, scheduler = mmagic_parts(config)
    mm_model.generator.load_state_dict(initial_network(recipe).state_dict())
    mm_model.train()
    for batch, scale in zip(batches, step_scales):
        lq, gt = batch[scale or 2]
        samples = [DataSample(gt_img=gt[i], metainfo={'scale': scale} if multiscale else {}) for i in range(len(lq))]
        mm_model.train_step({'inputs': list(lq), 'data_samples': samples}, wrapper)
        scheduler.step()
    assert max_difference(mm_model.generator, reference) <= TOLERANCE


def basicsr_learning_rates(tmp_path, monkeypatch, iterations: int) -> np.ndarray:
    """The rate of each iteration, ``BaseModel.update_learning_rate`` called as ``train_pipeline`` does."""
    model = basicsr_model('train_lesrcnn_x2.yml', tmp_path, monkeypatch)
    group = model.optimizers[0].param_groups[0]
    rates = np.empty(iterations)
    for current_iter in range(1, iterations + 1):
        model.update_learning_rate(current_iter, warmup_iter=-1)
        rates[current_iter - 1] = group['lr']
    return rates


def mmagic_learning_rates(iterations: int) -> np.ndarray:
    """The rate of each iteration, the scheduler stepped after it (``ParamSchedulerHook``)."""
    _, _, wrapper, scheduler = mmagic_parts('lesrcnn_x2_div2k.py')
    group = wrapper.optimizer.param_groups[0]
    rates = np.empty(iterations)
    for index in range(iterations):
        rates[index] = group['lr']
        scheduler.step()
    return rates


def test_schedules_halve_the_rate_as_the_authors_do(tmp_path, monkeypatch):
    total = AUTHORS['max_steps']
    updates = np.arange(total)  # updates already made before this one
    formula = AUTHORS['lr'] * 0.5 ** (updates // AUTHORS['decay'])
    # The authors' trainer sets the rate after each step from the count before increasing it, so
    # update u uses 0.5 ** ((u - 1) // decay): it halves one update later than the formula.
    authors = AUTHORS['lr'] * 0.5 ** (np.maximum(updates - 1, 0) // AUTHORS['decay'])
    boundaries = [b for b in range(AUTHORS['decay'], total, AUTHORS['decay'])]
    assert boundaries == [400_000]
    for name, rates in (('BasicSR', basicsr_learning_rates(tmp_path, monkeypatch, total)),
                        ('MMagic', mmagic_learning_rates(total))):
        for b in boundaries:
            around = slice(b - 1, b + 2)
            np.testing.assert_allclose(rates[around], formula[around], rtol=1e-12, err_msg=f'{name} at {b} +- 1')
        np.testing.assert_allclose(rates, formula, rtol=1e-12, err_msg=name)
        # The named difference: the one update at each boundary where the authors still use the old rate.
        assert list(np.nonzero(~np.isclose(rates, authors, rtol=1e-12))[0]) == boundaries, name


def test_recipes_hold_the_authors_hyperparameters():
    """The recipes' values against the authors'; the deliberate differences are named below."""
    opt = yaml.safe_load((REPO / 'options' / 'train_lesrcnn_x2.yml').read_text())
    train = opt['train']
    assert train['optim_g'] == {'type': 'Adam', 'lr': AUTHORS['lr'], 'weight_decay': 0, 'betas': [0.9, 0.999],
                                'eps': 1e-8}
    assert train['grad_clip_norm'] == AUTHORS['clip']
    assert train['pixel_opt'] == {'type': 'MSELoss', 'loss_weight': 1.0, 'reduction': 'mean'}
    assert train['scheduler'] == {'type': 'MultiStepLR', 'milestones': [AUTHORS['decay']], 'gamma': 0.5}
    train_set = opt['datasets']['train']
    assert train_set['batch_size_per_gpu'] == AUTHORS['batch']
    assert train_set['gt_size'] == AUTHORS['patch'] * 2 and train_set['use_hflip'] and train_set['use_rot']
    # Difference: the authors stop at the end of the epoch in which the step count passes max_steps
    # (12 iterations per epoch of the 800 DIV2K images, so up to 600,012); the recipes stop at 600,000.
    assert train['total_iter'] == AUTHORS['max_steps']

    cfg = mmagic_parts('lesrcnn_x2_div2k.py')[0]
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, tuple(optimizer.betas), optimizer.eps) == ('Adam', AUTHORS['lr'],
                                                                                     (0.9, 0.999), 1e-8)
    assert cfg.optim_wrapper.clip_grad == {'max_norm': AUTHORS['clip']}
    assert cfg.param_scheduler.milestones == [AUTHORS['decay']] and cfg.param_scheduler.gamma == 0.5
    assert cfg.train_cfg.max_iters == AUTHORS['max_steps'] and cfg.train_dataloader.batch_size == AUTHORS['batch']
    assert cfg.model.pixel_loss == {'type': 'MSELoss', 'loss_weight': 1.0, 'reduction': 'mean'}


def test_multiscale_scale_draw_is_uniform_and_survives_a_resume(tmp_path, monkeypatch):
    """10,000 iterations of LESRCNNModel's draw: each scale within 4.5 binomial standard deviations
    of a third; a run resumed from a training state (its own manual_seed different, as when BasicSR
    draws one) goes on with the same scales."""
    iterations, scales = 10_000, [2, 3, 4]
    model = basicsr_model('train_multiscale_lesrcnn.yml', tmp_path, monkeypatch)
    sequence = [draw_scale(scales, model.scale_seed, it) for it in range(1, iterations + 1)]
    counts = np.array([sequence.count(k) for k in scales])
    sd = np.sqrt(iterations * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - iterations / 3) < 4.5 * sd), counts

    half = iterations // 2
    model.opt['path']['training_states'] = str(tmp_path)
    model.save_training_state(epoch=0, current_iter=half)
    resumed = basicsr_model('train_multiscale_lesrcnn.yml', tmp_path, monkeypatch, 'manual_seed=11')
    assert resumed.scale_seed != model.scale_seed
    from lesrcnn_plugin.safe_load import load_untrusted
    resumed.resume_training(load_untrusted(tmp_path / f'{half}.state', map_location='cpu'))
    assert [draw_scale(scales, resumed.scale_seed, it) for it in range(half + 1, iterations + 1)] == sequence[half:]


def test_mmagic_scale_draw_is_uniform_and_survives_a_resume():
    """GroupByDatasetBatchSampler over the three DIV2K datasets (sizes equal), as the LESRCNN-S config
    builds it: the batch scales are uniform over 10,000 batches; a resumed run, which re-creates the
    iterator and skips the batches already trained (mmengine's IterBasedTrainLoop), gets the same."""
    pytest.importorskip('mmagic')
    from mmengine.dataset import InfiniteSampler
    from torch.utils.data import ConcatDataset

    from lesrcnn_plugin.mmagic import GroupByDatasetBatchSampler
    batches, per_scale = 10_000, 50
    dataset = ConcatDataset([list(range(per_scale))] * 3)

    def scales_of(skip: int, count: int) -> list[int]:
        sampler = GroupByDatasetBatchSampler(InfiniteSampler(dataset, shuffle=True, seed=10), batch_size=4)
        iterator = iter(sampler)
        for _ in range(skip):
            next(iterator)
        return [2 + sampler.dataset_index(next(iterator)[0]) for _ in range(count)]

    sequence = scales_of(0, batches)
    counts = np.array([sequence.count(k) for k in (2, 3, 4)])
    sd = np.sqrt(batches * (1 / 3) * (2 / 3))
    assert np.all(np.abs(counts - batches / 3) < 4.5 * sd), counts
    assert scales_of(batches // 2, 1000) == sequence[batches // 2:batches // 2 + 1000]


def test_bf16_autocast_trains_and_tracks_fp32():
    """``train: amp: bf16`` on the x2 recipe, a few iterations (tools/check_mixed_precision.py runs 300
    for docs/benchmarks.md): finite losses within 5% of fp32's at every iteration."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('check_mixed_precision', REPO / 'tools' / 'check_mixed_precision.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    data = tool.batches(iters=4, batch=2, lr_patch=12)
    fp32, bf16 = tool.train_losses('false', data, 'cpu'), tool.train_losses('bf16', data, 'cpu')
    assert all(np.isfinite(fp32)) and all(np.isfinite(bf16))
    assert fp32 != bf16, 'bf16 autocast must change the arithmetic'
    assert tool.compare(fp32, bf16, window=1)['max_raw'] < 0.05
