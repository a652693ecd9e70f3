"""How mmengine reads checkpoints once the MMagic integration is imported: as data, by any scheme.

Every scheme mmengine's ``CheckpointLoader`` knows (``load_from``, ``--resume``, a work dir's
``last_checkpoint``, ``init_cfg=dict(type='Pretrained', ...)``, ``mim test ... --checkpoint``) is
replaced for the whole process, so that MMagic's own tools are safe too:

* local files are read with ``lesrcnn_plugin.safe_load.load_untrusted``. mmengine's own loaders
  call ``torch.load`` (for URLs through ``torch.hub``, with ``weights_only=False``): a crafted file
  would run code;
* ``http://``, ``https://``: downloaded into torch.hub's checkpoint cache (where mmengine puts
  them), at most ``LESRCNN_MAX_CHECKPOINT_BYTES`` and with the weights download's read timeout
  (``LESRCNN_WEIGHTS_TIMEOUT``), then read as a local file. A cached file is read the same way;
* ``open-mmlab://``, ``openmmlab://``, ``mmcls://``, ``torchvision://``, ``modelzoo://``: the name
  is looked up in mmengine's model lists, then read as the URL or file it names;
* ``lesrcnn://NAME`` loads a registered weights name (``lesrcnn_plugin.weights``) as an MMagic
  checkpoint of the generator: ``load_from = 'lesrcnn://lesrcnn_x2'``;
* any other scheme (``pavi://``, ``s3://``, ``petrel://``, ...) is refused in one line: download
  the file and give its path.

Whatever the scheme, the checkpoint read is then checked (``as_mmagic_checkpoint``): LESRCNN-family
weights in another layout (the authors', BasicSR's, plain) are converted to MMagic's
(``generator.*``), as BasicSR's ``pretrain_network_g`` converts them, instead of loading nothing;
non-finite weights are refused; and ``meta['config']``, which ``Runner.resume`` executes as a
Python config, is dropped (mmengine writes its own config as ``meta['cfg']``, never executed there).
"""
from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

import torch
from mmengine.runner.checkpoint import (CheckpointLoader, _get_mmengine_home, _process_mmcls_checkpoint,
                                        get_deprecated_model_names, get_external_models, get_mmcls_models,
                                        get_torchvision_models)

from ..checkpoint import (FILE_FORMATS, detect_format, format_checkpoint, is_family_checkpoint, non_finite_keys,
                          resolve_source, to_plugin_state)
from ..errors import CheckpointError
from ..fileio import atomic_path
from ..safe_load import MAX_BYTES_VARIABLE, load_untrusted, max_checkpoint_bytes
from ..weights import DownloadTooLarge, download_capped, download_timeout

#: Prefix of a registered weights name in ``load_from`` / ``init_cfg`` / ``--checkpoint``.
WEIGHTS_SCHEME = 'lesrcnn://'
#: Schemes naming an entry of one of mmengine's model lists, and the function returning that list.
MODEL_ZOO_SCHEMES = {'open-mmlab://': get_external_models, 'openmmlab://': get_external_models,
                     'mmcls://': get_mmcls_models, 'torchvision://': get_torchvision_models,
                     'modelzoo://': get_torchvision_models}
#: Where an MMagic checkpoint keeps the weights and the metadata (``checkpoint.FILE_FORMATS``).
MMAGIC = FILE_FORMATS['mmagic']


def as_mmagic_checkpoint(checkpoint: Mapping, source: str) -> Mapping:
    """A checkpoint read from ``source`` as mmengine's Runner may use it (see the module docstring)."""
    if is_family_checkpoint(checkpoint) and detect_format(checkpoint) != 'mmagic':
        checkpoint = format_checkpoint(to_plugin_state(checkpoint), 'mmagic', meta={'weights': str(source)})
    weights = checkpoint.get(MMAGIC.written_under)
    non_finite = non_finite_keys(weights if isinstance(weights, Mapping) else checkpoint)
    if non_finite:
        raise CheckpointError(f'{source}: non-finite weights (NaN or Inf) in {", ".join(non_finite[:5])}'
                              + (f' and {len(non_finite) - 5} more' if len(non_finite) > 5 else ''))
    meta = checkpoint.get(MMAGIC.meta)
    if isinstance(meta, dict):
        meta.pop('config', None)
    return checkpoint


def load_from_local_as_data(filename: str, map_location=None) -> Mapping:
    """mmengine's local-path loader (``load_from_local``), reading the file as inert data.

    The names follow mmengine's ``load_from_<backend>`` convention, which its log line quotes.
    """
    checkpoint = load_untrusted(Path(filename).expanduser(), map_location=_on_cpu_by_default(map_location))
    return as_mmagic_checkpoint(checkpoint, filename)


def _on_cpu_by_default(map_location):
    # mmengine's None means "where it was saved": the authors' files were saved on a GPU.
    return 'cpu' if map_location is None else map_location


def load_from_http_as_data(url: str, map_location=None) -> Mapping:
    """``http(s)://...``: the file downloaded into torch.hub's checkpoint cache (or found there), read as data."""
    path = Path(torch.hub.get_dir(), 'checkpoints', os.path.basename(urllib.parse.urlparse(url).path) or 'checkpoint')
    downloaded = not path.is_file()
    if downloaded:
        download_checkpoint(url, path)
    try:
        checkpoint = load_untrusted(path, map_location=_on_cpu_by_default(map_location))
    except CheckpointError as exc:
        if downloaded:  # not kept in the cache, where it would stand for the URL at the next run
            path.unlink(missing_ok=True)
        raise CheckpointError(f'{url} -> {exc}') from None
    return as_mmagic_checkpoint(checkpoint, url)


def download_checkpoint(url: str, path: Path) -> None:
    """Download ``url`` to ``path`` (atomically): at most ``max_checkpoint_bytes()``, no read waiting
    longer than the weights download's timeout. Failures are one ``CheckpointError`` naming the URL."""
    limit, timeout = max_checkpoint_bytes(), download_timeout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp, open(tmp, 'wb') as file:
            download_capped(url, file, limit, timeout)
    except DownloadTooLarge:
        raise CheckpointError(f'{url}: larger than {limit:,} bytes, not downloaded (raise the limit with '
                              f'{MAX_BYTES_VARIABLE}=BYTES if the file is trusted to be that large)') from None
    except urllib.error.HTTPError as exc:
        raise CheckpointError(f'{url}: cannot download ({exc})') from None
    except urllib.error.URLError as exc:
        raise CheckpointError(f'{url}: cannot download ({exc.reason})') from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise CheckpointError(f'{url}: cannot download ({type(exc).__name__}: {exc or "no data"}; '
                              f'timeout {timeout:g} s)') from None


def load_from_model_zoo_as_data(filename: str, map_location=None) -> Mapping:
    """``open-mmlab://NAME`` and the other model-list schemes: the URL or file the list gives, read as data."""
    scheme = next(prefix for prefix in MODEL_ZOO_SCHEMES if filename.startswith(prefix))
    name = filename[len(scheme):]
    if scheme in ('open-mmlab://', 'openmmlab://'):
        name = get_deprecated_model_names().get(name, name)
    models = MODEL_ZOO_SCHEMES[scheme]()
    if name not in models:
        raise CheckpointError(f'{filename}: {name!r} is not in mmengine\'s {scheme} model list')
    location = models[name]
    if location.startswith(('http://', 'https://')):
        checkpoint = load_from_http_as_data(location, map_location)
    else:
        checkpoint = load_from_local_as_data(os.path.join(_get_mmengine_home(), location), map_location)
    return _process_mmcls_checkpoint(checkpoint) if scheme == 'mmcls://' else checkpoint


def load_from_weights_name(filename: str, map_location=None) -> Mapping:
    """``lesrcnn://NAME`` (or ``lesrcnn://FILE``): the weights as an MMagic checkpoint of the generator."""
    path = resolve_source(filename[len(WEIGHTS_SCHEME):])
    try:
        state = to_plugin_state(load_untrusted(path))
    except CheckpointError as exc:
        raise CheckpointError(f'{filename}: {exc}') from None
    return as_mmagic_checkpoint(format_checkpoint(state, 'mmagic', meta={'weights': str(path)}), str(path))


def load_from_refused_scheme(filename: str, map_location=None) -> Mapping:
    """Any scheme this package does not read as data: refused in one line."""
    raise CheckpointError(f'{filename}: checkpoints are read as inert data from files, http(s):// URLs, '
                          f'mmengine\'s model lists and {WEIGHTS_SCHEME} names only; download the file and give '
                          'its path')


def install_checkpoint_loaders() -> None:
    """Give every scheme of mmengine's ``CheckpointLoader`` a loader that reads as data; idempotent.

    Schemes registered after this call (by a module imported later) are not covered: the
    integration is imported by the configs' ``custom_imports``, after MMagic's own modules.
    """
    loaders = {'': load_from_local_as_data, 'http://': load_from_http_as_data, 'https://': load_from_http_as_data,
               WEIGHTS_SCHEME: load_from_weights_name,
               **{scheme: load_from_model_zoo_as_data for scheme in MODEL_ZOO_SCHEMES}}
    for scheme in list(CheckpointLoader._schemes):
        loaders.setdefault(scheme, load_from_refused_scheme)
    for scheme, loader in loaders.items():
        CheckpointLoader.register_scheme(scheme, loader, force=True)


__all__ = ['MODEL_ZOO_SCHEMES', 'WEIGHTS_SCHEME', 'as_mmagic_checkpoint', 'download_checkpoint',
           'install_checkpoint_loaders', 'load_from_http_as_data', 'load_from_local_as_data',
           'load_from_model_zoo_as_data', 'load_from_refused_scheme', 'load_from_weights_name']
