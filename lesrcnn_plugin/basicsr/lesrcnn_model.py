"""``LESRCNNModel``: BasicSR's SRModel plus what the LESRCNN recipe needs and SRModel lacks.

* Gradient-norm clipping (``train: grad_clip_norm: 10``, the authors' ``clip``); the norm before
  clipping is logged as ``grad_norm``.
* Mixed precision (``train: amp: bf16 | fp16 | false``): the forward pass and the loss run under
  autocast; fp16 adds a gradient scaler, whose state is saved with the training state.
* Speed switches, off by default because they change the arithmetic a little:
  ``train: channels_last: true`` keeps the network's weights and the batches in channels_last
  (NHWC) memory format, which tensor-core convolutions (bf16/fp16) prefer;
  ``train: compile: true`` runs the training forward pass through ``torch.compile`` (validation
  stays eager, and checkpoints keep their keys).
* Multi-scale training for LESRCNN-S: given a batch of ``MultiScalePairedImageDataset`` (pairs
  ``lq_x{k}``/``gt_x{k}`` for every scale), each iteration trains on the pair of one scale for the
  whole batch. The scale is drawn from ``manual_seed`` and the iteration number, so every rank of a
  distributed run draws the same one and a resumed run continues the same sequence: rank 0's seed
  is sent to every rank (BasicSR draws one per process when ``manual_seed`` is unset) and saved with
  the training state. The drawn scale is logged as ``scale``.
* Distributed training on CPU (gloo, ``lesrcnn_plugin.basicsr.launch``): DDP without device ids.
* Per-scale validation: a validation (or test) dataset with its own ``scale`` option is run at
  that scale when the network takes one (``forward(x, scale)``, as ``MultiScaleLESRCNN``); name
  such datasets after their scale (``Set5_x3``) so that the metrics say which scale they belong to.
  A metric's ``crop_border: scale`` crops each set by its own scale.

* Weights (``path: pretrain_network_g``) in any format the plugin reads, or by registered name
  (``lesrcnn_x2``): ``load_network`` goes through ``lesrcnn_plugin.checkpoint``.

* Checkpoints (``net_g_<iter>.pth``) and training states (``<iter>.state``) are written atomically,
  to a temporary name renamed into place: a full disk leaves the previous ones as they were, and
  stops the run with one line naming the file (BasicSR writes in place, retries three times and
  then carries on without the checkpoint, leaving a truncated file).

Everything else (losses, EMA, metrics) is SRModel's.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
from collections import OrderedDict

import torch

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from ..checkpoint import load_weights
from ..fileio import write_bytes_atomic

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def amp_dtype(setting) -> torch.dtype | None:
    """The autocast dtype of the ``train: amp`` option (``None``/``false`` means full precision)."""
    if setting in (None, False, 'false', 'none', 'fp32'):
        return None
    if setting not in AMP_DTYPES:
        raise ValueError(f'train: amp must be one of bf16, fp16 or false, got {setting!r}')
    return AMP_DTYPES[setting]


def draw_scale(scales: list[int], seed: int, current_iter: int) -> int:
    """The training scale of iteration ``current_iter``: random, yet the same on every rank and on resume."""
    return random.Random(seed * 1_000_003 + current_iter).choice(sorted(scales))


def batch_scales(data: dict) -> list[int]:
    """Scales for which a multi-scale batch holds an LR/HR pair (keys ``lq_x{k}``)."""
    return sorted(int(key[len('lq_x'):]) for key in data if key.startswith('lq_x'))


def resolve_crop_border(metrics: dict, scale: int | None, dataset_name: str) -> dict:
    """Metric options with ``crop_border: scale`` replaced by the validation set's scale.

    One ``val: metrics`` section serves every validation set; with sets of several scales (LESRCNN-S)
    ``crop_border: scale`` crops each by its own scale, as the papers do.
    """
    resolved = {}
    for name, metric_opt in metrics.items():
        metric_opt = dict(metric_opt)
        if metric_opt.get('crop_border') == 'scale':
            if scale is None:
                raise ValueError(f'metric {name} has crop_border: scale, but validation set {dataset_name} '
                                 'has no "scale" option')
            metric_opt['crop_border'] = int(scale)
        resolved[name] = metric_opt
    return resolved


class LESRCNNModel(SRModel):
    """SRModel with gradient clipping, mixed precision and multi-scale (LESRCNN-S) training.

    Options read in addition to SRModel's:
        train.grad_clip_norm (float): Clip the global gradient norm to this value; 0/absent: no clipping.
        train.amp (str | bool): ``bf16``, ``fp16`` or ``false`` (default).
        train.channels_last (bool): Weights and batches in channels_last memory format (default false).
        train.compile (bool): ``torch.compile`` the network for the training step (default false).
        manual_seed (int): Also seeds the per-iteration choice of scale in multi-scale training.
        datasets.<val or test>.scale (int): Scale at which a multi-scale network is validated on it.
        val.metrics.<metric>.crop_border: may be ``scale``: crop each validation set by its own scale.
    """

    def __init__(self, opt):
        self._val_scale = None
        self._multiscale_batch = None
        self.channels_last = False
        self.scale_seed = opt.get('manual_seed')
        if opt.get('dist'):
            seed = [self.scale_seed]
            torch.distributed.broadcast_object_list(seed, src=0)
            self.scale_seed = seed[0]
        super().__init__(opt)

    def model_to_device(self, net):
        if self.opt.get('dist') and self.device.type == 'cpu':  # BasicSR's DDP asks for a CUDA device id
            return torch.nn.parallel.DistributedDataParallel(
                net.to(self.device), find_unused_parameters=self.opt.get('find_unused_parameters', False))
        return super().model_to_device(net)

    # ------------------------------------------------------------------ training
    def init_training_settings(self):
        train_opt = self.opt['train']
        self.grad_clip_norm = float(train_opt.get('grad_clip_norm') or 0)
        self.amp_dtype = amp_dtype(train_opt.get('amp'))
        # Only fp16 needs loss scaling; bf16 has float32's exponent range.
        self.grad_scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        if self.amp_dtype is not None:
            get_root_logger().info(f'Mixed precision training with {train_opt["amp"]} autocast.')
        self.channels_last = bool(train_opt.get('channels_last'))
        if self.channels_last:
            self.net_g.to(memory_format=torch.channels_last)
        # A compiled view of net_g for the training step only: validation runs eagerly on images of
        # every size, and net_g itself (hence its state dict) stays as it is.
        self._train_net = torch.compile(self.net_g) if train_opt.get('compile') else self.net_g
        super().init_training_settings()

    def _memory_format(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch

    def feed_data(self, data):
        if 'lq' in data:
            self._multiscale_batch = None
            super().feed_data(data)
            self.lq = self._memory_format(self.lq)
            if 'gt' in data:
                self.gt = self._memory_format(self.gt)
        else:  # a multi-scale batch: the scale is drawn in optimize_parameters, which knows the iteration
            if not batch_scales(data):
                raise KeyError(f'a batch needs "lq" or "lq_x{{k}}" entries, got {sorted(data)}')
            self._multiscale_batch = data

    def _select_scale(self, current_iter: int) -> int | None:
        """Move the pair of this iteration's scale to the device; ``None`` for a single-scale batch."""
        if self._multiscale_batch is None:
            return None
        scale = draw_scale(batch_scales(self._multiscale_batch), self.scale_seed, current_iter)
        self.lq = self._memory_format(self._multiscale_batch[f'lq_x{scale}'].to(self.device))
        self.gt = self._memory_format(self._multiscale_batch[f'gt_x{scale}'].to(self.device))
        return scale

    @staticmethod
    def _run_network(net, lq: torch.Tensor, scale: int | None) -> torch.Tensor:
        # A scale comes with multi-scale batches and validation only; a single-scale batch calls the
        # network plainly, so that the model also trains networks outside the family.
        return net(lq) if scale is None else net(lq, scale=scale)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _losses(self) -> tuple[torch.Tensor, OrderedDict]:
        """SRModel's pixel and perceptual losses of ``self.output`` against ``self.gt``."""
        l_total = 0
        loss_dict = OrderedDict()
        if self.cri_pix:
            l_pix = self.cri_pix(self.output, self.gt)
            l_total += l_pix
            loss_dict['l_pix'] = l_pix
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(self.output, self.gt)
            if l_percep is not None:
                l_total += l_percep
                loss_dict['l_percep'] = l_percep
            if l_style is not None:
                l_total += l_style
                loss_dict['l_style'] = l_style
        return l_total, loss_dict

    def optimize_parameters(self, current_iter):
        scale = self._select_scale(current_iter)
        self.optimizer_g.zero_grad()
        with self._autocast():
            self.output = self._run_network(self._train_net, self.lq, scale)
            l_total, loss_dict = self._losses()

        if self.grad_scaler is not None:
            self.grad_scaler.scale(l_total).backward()
            self.grad_scaler.unscale_(self.optimizer_g)  # clip the true gradients, not the scaled ones
        else:
            l_total.backward()
        grad_norm = None
        if self.grad_clip_norm > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.net_g.parameters(), self.grad_clip_norm)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer_g)  # skipped when the gradients overflowed
            self.grad_scaler.update()
        else:
            self.optimizer_g.step()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if grad_norm is not None:
            self.log_dict['grad_norm'] = float(grad_norm)
        if scale is not None:
            self.log_dict['scale'] = scale

        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    # ---------------------------------------------------------------- validation
    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        self._val_scale = dataloader.dataset.opt.get('scale')
        val_opt = self.opt['val']
        metrics = val_opt.get('metrics')
        if metrics is not None:
            val_opt['metrics'] = resolve_crop_border(metrics, self._val_scale, dataloader.dataset.opt['name'])
        try:
            super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self._val_scale = None
            if metrics is not None:
                val_opt['metrics'] = metrics

    def test(self):
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = self._run_network(net, self.lq, self._val_scale)
        net.train(was_training)

    # ----------------------------------------------------------- loading weights
    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BasicSR's ``load_network`` through the plugin's loader.

        ``path: pretrain_network_g`` may then be any checkpoint the plugin reads (the authors', BasicSR,
        MMagic ``iter_*.pth``, a plain state dict) or a registered weights name (``lesrcnn_x2``), and
        the file is read as inert data. BasicSR's ``param_key`` still picks its container when the
        file has one (``params_ema`` falling back to ``params``, as BasicSR does).
        """
        containers = ('params_ema', 'params') if param_key == 'params_ema' else (param_key,) if param_key else ()
        path = load_weights(self.get_bare_model(net), load_path, strict=strict, containers=containers)
        get_root_logger().info(f'Loaded {type(self.get_bare_model(net)).__name__} from {path} '
                               f'({"strictly" if strict else "non-strict"}).')

    # ------------------------------------------------------------------ saving
    @staticmethod
    def _save_atomically(obj, path: str) -> None:
        """``torch.save`` ``obj`` to ``path`` through a temporary file: all of it, or nothing and ``path`` unchanged.

        Serialised in memory first: ``torch.save`` to a file reports a failed write as a
        ``RuntimeError`` naming no file, whereas ``write_bytes_atomic`` raises an ``OSError`` naming
        ``path`` (a full disk, a quota, a read-only folder) after removing its temporary file.
        """
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        try:
            write_bytes_atomic(path, buffer.getbuffer())
        except OSError as exc:
            raise OSError(exc.errno, f'{exc.strerror}; not saved, the files saved before it are kept',
                          exc.filename) from None

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's ``<net_label>_<iter>.pth`` (``_latest`` for ``current_iter == -1``), written atomically.

        The same file as BasicSR's: ``{param_key: state_dict}`` per network, tensors on the CPU, without
        DDP's ``module.`` prefix. A failed write raises ``OSError`` naming the file.
        """
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError(f'save_network: {len(nets)} networks but {len(keys)} parameter keys')
        checkpoint = {}
        for net_, key in zip(nets, keys):
            # Renamed in place, in order, so that the state dict keeps its _metadata (module versions).
            state_dict = self.get_bare_model(net_).state_dict()
            for name in list(state_dict):
                state_dict[name.removeprefix('module.')] = state_dict.pop(name).cpu()
            checkpoint[key] = state_dict
        label = 'latest' if current_iter == -1 else current_iter
        self._save_atomically(checkpoint, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    # ------------------------------------------------------------ training state
    @master_only
    def save_training_state(self, epoch, current_iter):
        """SRModel's training state (optimizers, schedulers) plus the fp16 gradient scaler and the seed of
        the multi-scale draw, written atomically."""
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter,
                 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers], 'scale_seed': self.scale_seed}
        if self.grad_scaler is not None:
            state['grad_scaler'] = self.grad_scaler.state_dict()
        self._save_atomically(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        if self.grad_scaler is not None and 'grad_scaler' in resume_state:
            self.grad_scaler.load_state_dict(resume_state['grad_scaler'])
        # The scale sequence goes on, whatever seed this run drew (manual_seed unset).
        self.scale_seed = resume_state.get('scale_seed', self.scale_seed)
