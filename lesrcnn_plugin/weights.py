"""The authors' trained LESRCNN weights by name: a small registry, a verified download and a cache.

Registry
    ``WEIGHTS`` maps a name (``lesrcnn_x2``, ``lesrcnn_x3``, ``lesrcnn_x4``) to a frozen
    :class:`WeightsEntry`: where the file lies in the authors' repository, its SHA256, the network
    and scale it belongs to, where it comes from and what may be done with it. The files are pinned
    to one upstream commit, so a name always means the same bytes.

Download
    :func:`weights_path` downloads a registered file from ``UPSTREAM_BASE_URL + relative_path``.
    ``LESRCNN_WEIGHTS_MIRROR=<base URL>`` replaces the upstream base URL; the mirror keeps the
    upstream layout (``<mirror>/x2/lesrcnn_x2.pth``), and ``file://`` URLs work too. A mirror is
    trusted with nothing: the download stops, and nothing is kept, as soon as it exceeds the
    registered size; a read that gets no data for ``$LESRCNN_WEIGHTS_TIMEOUT`` seconds (default 30)
    ends it; the full SHA256 is checked before the file is published. Each is refused with a
    one-line :class:`WeightsError`.

Cache
    ``$LESRCNN_WEIGHTS_DIR`` if set, else ``<torch.hub.get_dir()>/checkpoints/lesrcnn`` (by
    default ``~/.cache/torch/hub/checkpoints/lesrcnn``, moved by ``$TORCH_HOME``), beside the
    checkpoints torch.hub itself caches. Files are named ``<name>.pth``. A cached file is used only
    when its SHA256 matches the registry, so a corrupt one is downloaded again. Downloads are
    written under a temporary name beside the target and renamed into place once verified
    (:func:`lesrcnn_plugin.fileio.atomic_path`), so the cache never holds a partial or refused file.
    A download holds a lock on ``.<name>.pth.lock`` in the cache (:func:`lesrcnn_plugin.fileio.exclusive_lock`):
    a second process asking for the same name waits and then finds the file cached, and the holder
    removes the partial files of downloads that were killed (SIGTERM, power loss) before it starts.

:func:`resolve_weights` is the entry point for command lines: it takes an existing path or a
registered name.
"""
from __future__ import annotations

import difflib
import hashlib
import http.client
import logging
import math
import os
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch.hub
from tqdm import tqdm

from .errors import WeightsError
from .fileio import atomic_path, exclusive_lock, make_folder

logger = logging.getLogger(__name__)

UPSTREAM_REPOSITORY = 'hellloxiaotian/LESRCNN'
UPSTREAM_COMMIT = 'e3729ed3884cbaa67c1534a1ac9626c71d670d27'
UPSTREAM_BASE_URL = f'https://github.com/{UPSTREAM_REPOSITORY}/raw/{UPSTREAM_COMMIT}/'
MIRROR_ENV = 'LESRCNN_WEIGHTS_MIRROR'
CACHE_ENV = 'LESRCNN_WEIGHTS_DIR'
TIMEOUT_ENV = 'LESRCNN_WEIGHTS_TIMEOUT'
#: Seconds a download waits for data (to connect, for the headers, for each block) before giving up.
DEFAULT_TIMEOUT = 30.0
_READ_BLOCK = 64 * 1024

_PAPER = ('C. Tian, R. Zhuge, Z. Wu, Y. Xu, W. Zuo, C. Chen, C.-W. Lin, "Lightweight Image '
          'Super-Resolution with Enhanced CNN", Knowledge-Based Systems 205 (2020) 106235')
_SOURCE = f'{_PAPER}; https://github.com/{UPSTREAM_REPOSITORY} at commit {UPSTREAM_COMMIT}'
_LICENCE = ('no licence stated: the upstream README at that commit names none and no licence file '
            'was found in the repository; the weights are the authors\' work, so cite the paper '
            'and ask the authors before redistributing them')


@dataclass(frozen=True)
class WeightsEntry:
    """One released weights file.

    Attributes:
        name: the registry key, e.g. ``lesrcnn_x2``.
        relative_path: the file's path in the upstream repository (and on a mirror).
        sha256: the file's full SHA256, lower-case hex.
        size: the file's size in bytes: a download never writes more.
        arch: the network the state dict belongs to (a name in ``lesrcnn_plugin.archs``).
        scale: the upscale factor the network was trained for.
        source: the paper and the repository at the pinned commit.
        licence: what the upstream repository states about reuse.
    """

    name: str
    relative_path: str
    sha256: str
    size: int
    arch: str
    scale: int
    source: str
    licence: str


def _official(scale: int, sha256: str, size: int) -> WeightsEntry:
    """The registry entry of the authors' single-scale x``scale`` weights."""
    name = f'lesrcnn_x{scale}'
    return WeightsEntry(name=name, relative_path=f'x{scale}/{name}.pth', sha256=sha256, size=size, arch='LESRCNN',
                        scale=scale, source=_SOURCE, licence=_LICENCE)


# SHA256s and sizes of the files at UPSTREAM_COMMIT (../shared/weights/lesrcnn_official/SHA256SUMS).
WEIGHTS: dict[str, WeightsEntry] = {entry.name: entry for entry in (
    _official(2, '66b4b2ddb268486f78a3d49758a016417e64f602ef963667b5ce34039200bcde', 2_510_948),
    _official(3, '95cbabcbd243e5582118d3bba44fd751a80dd19a291d5f3b1ebd7c9b3b61346a', 3_249_508),
    _official(4, '1de9d0e1b1817de43fba3ce9c4b966fd8cde81e160d7432a844d6a2296f90cbc', 3_102_164),
)}


def list_weights() -> list[str]:
    """The registered names, sorted (for ``--help`` texts and error messages)."""
    return sorted(WEIGHTS)


def weights_dir() -> Path:
    """The cache folder: ``$LESRCNN_WEIGHTS_DIR`` if set, else ``<torch.hub.get_dir()>/checkpoints/lesrcnn``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(torch.hub.get_dir()) / 'checkpoints' / 'lesrcnn'


def download_timeout() -> float:
    """Seconds a download waits for data: ``$LESRCNN_WEIGHTS_TIMEOUT``, else ``DEFAULT_TIMEOUT``."""
    text = os.environ.get(TIMEOUT_ENV)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise WeightsError(f'{TIMEOUT_ENV}={text!r}: expected a positive number of seconds')
    return seconds


def weights_url(name: str) -> str:
    """The URL a registered file is downloaded from: the mirror's if ``$LESRCNN_WEIGHTS_MIRROR`` is set."""
    entry = _entry(name)
    base_url = os.environ.get(MIRROR_ENV) or UPSTREAM_BASE_URL
    return f'{base_url.rstrip("/")}/{entry.relative_path}'


def weights_path(name: str, progress: bool = True) -> Path:
    """The verified local file of a registered name, downloaded into the cache on first use.

    A cached file whose SHA256 matches is returned without touching the network. Otherwise the file
    is downloaded from :func:`weights_url` and published in the cache only once its full SHA256
    matches the registry.

    Args:
        name: a registered name (see :func:`list_weights`).
        progress: show a progress bar on stderr while downloading.

    Returns:
        The path of the cached file.

    Raises:
        WeightsError: the name is not registered, the download failed, or the downloaded file's
            SHA256 differs from the registry (the file is then not kept).
    """
    entry = _entry(name)
    cache = weights_dir()
    if cache.exists() and not cache.is_dir():
        raise WeightsError(f'{cache}: is a file, not a folder; {CACHE_ENV} must name the folder that caches '
                           'weights files')
    cached = cache / f'{entry.name}{PurePosixPath(entry.relative_path).suffix}'
    if _verified(cached, entry):
        return cached
    timeout = download_timeout()
    make_folder(cache)
    with exclusive_lock(cache / f'.{cached.name}.lock'):
        if _verified(cached, entry):  # downloaded by the process that held the lock before us
            return cached
        # Only a download holding the lock writes temporaries of this name: the ones there now are
        # what killed downloads left (torch.hub's '.partial' files of earlier versions included).
        for leftover in cache.glob(f'.{cached.name}.*'):
            if not leftover.name.endswith('.lock'):
                leftover.unlink(missing_ok=True)
        url = weights_url(name)
        with atomic_path(cached) as tmp:
            _download(entry, url, tmp, progress, timeout)
            actual = _sha256(tmp)
            if actual != entry.sha256:
                raise _hash_mismatch(entry, url, actual)
    return cached


def resolve_weights(source: str | os.PathLike, progress: bool = True) -> Path:
    """A weights file given on a command line: an existing path, or a registered name.

    Args:
        source: a path to an existing file (used as is), or a name from :func:`list_weights`
            (resolved with :func:`weights_path`). A path wins over a name of the same spelling.
        progress: show a progress bar if a registered file has to be downloaded.

    Raises:
        WeightsError: ``source`` is neither an existing path nor a registered name (the message
            lists the registered names, closest first), or :func:`weights_path` failed.
    """
    path = Path(source).expanduser()
    if path.exists():
        return path
    if str(source) in WEIGHTS:
        return weights_path(str(source), progress=progress)
    raise WeightsError(f'{str(source)!r}: no such file, and not a registered weights name; '
                       f'registered: {_names_closest_first(str(source))}')


def _entry(name: str) -> WeightsEntry:
    """The registry entry of ``name``, or a WeightsError listing the registered names."""
    try:
        return WEIGHTS[name]
    except KeyError:
        raise WeightsError(f'{name!r} is not a registered weights name; '
                           f'registered: {_names_closest_first(name)}') from None


def _names_closest_first(query: str) -> str:
    """The registered names as one comma-separated line, the most similar to ``query`` first.

    Similarity is ``difflib``'s ratio (characters in order) plus the same ratio for the characters in
    any order, which ranks ``lesrcnn_x2`` first for ``lesrcnn_2x``, where the ratio alone ties with
    ``lesrcnn_x3`` and ``lesrcnn_x4`` (and ``get_close_matches`` put ``lesrcnn_x4`` first). Ties
    stay in name order.
    """
    def similarity(name: str) -> float:
        shared_characters = sum((Counter(query) & Counter(name)).values())
        return (difflib.SequenceMatcher(None, query, name).ratio()
                + 2 * shared_characters / (len(query) + len(name)))

    return ', '.join(sorted(list_weights(), key=similarity, reverse=True))


def _verified(cached: Path, entry: WeightsEntry) -> bool:
    """Whether the cache holds ``entry``'s file; a cached file with another SHA256 is removed."""
    if not cached.is_file():
        return False
    actual = _sha256(cached)
    if actual == entry.sha256:
        return True
    logger.warning('cached %s has SHA256 %s, expected %s: downloading it again', cached, actual, entry.sha256)
    cached.unlink(missing_ok=True)  # useless now, and nobody should pick it up by path either
    return False


class DownloadTooLarge(Exception):
    """A download stopped past its size limit; ``str()`` says how it was found out."""


def download_capped(url: str, file, limit: int, timeout: float, progress: str | None = None) -> None:
    """Write ``url``'s body to the binary ``file``: at most ``limit`` bytes, no read waiting past ``timeout``.

    torch.hub's ``download_url_to_file`` takes neither a size limit nor a timeout (it reads until the
    server stops, and waits for ever), so this is its loop over urllib's ``urlopen``, with both. The
    weights by name and MMagic's checkpoints by URL both download through it. ``progress``, when given,
    names a progress bar of ``limit`` bytes, shown once the server has answered.

    Raises:
        DownloadTooLarge: the server announces or sends more than ``limit`` bytes.
        ValueError: a malformed URL; and urllib's, http.client's and the socket's errors as they come.
    """
    request = urllib.request.Request(url, headers={'User-Agent': 'lesrcnn-plugin'})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        declared = response.headers.get('Content-Length')
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise DownloadTooLarge(f'the server announces {int(declared)} bytes')
        with tqdm(total=limit, disable=progress is None, unit='B', unit_scale=True, unit_divisor=1024,
                  desc=progress) as bar:
            written = 0
            while block := response.read(min(_READ_BLOCK, limit + 1 - written)):
                written += len(block)
                if written > limit:
                    raise DownloadTooLarge('the server sent more')
                file.write(block)
                bar.update(len(block))


def _download(entry: WeightsEntry, url: str, destination: Path, progress: bool, timeout: float) -> None:
    """Download ``url`` to ``destination``: at most ``entry.size`` bytes, no wait longer than ``timeout``."""
    try:
        with open(destination, 'wb') as file:
            download_capped(url, file, entry.size, timeout, entry.name if progress else None)
    except DownloadTooLarge as detail:
        raise _too_large(entry, url, str(detail)) from None
    except ValueError as error:  # a malformed URL
        raise _download_failed(entry, url, error) from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
        # urllib wraps a timeout while connecting in a URLError, not one while reading the headers or the body.
        reason = error if isinstance(error, urllib.error.HTTPError) else getattr(error, 'reason', error)
        if isinstance(reason, TimeoutError):
            reason = (f'no data for {timeout:g} s (the server stalled; {TIMEOUT_ENV}=<seconds> sets how long to '
                      'wait)')
        raise _download_failed(entry, url, reason) from None


def _too_large(entry: WeightsEntry, url: str, detail: str) -> WeightsError:
    """The one-line error for a download larger than the registered file."""
    return WeightsError(f'{entry.name!r} from {url} is larger than the registered {entry.size} bytes ({detail}); '
                        'the download was stopped and nothing was kept')


def _download_failed(entry: WeightsEntry, url: str, reason: object) -> WeightsError:
    """The one-line error for a download that did not complete, with the two ways around it."""
    return WeightsError(f'cannot download {entry.name!r} from {url}: {reason}; set {MIRROR_ENV}=<base URL> '
                        f'to a mirror holding {entry.relative_path}, or pass the path of a local file '
                        'instead of the name')


def _hash_mismatch(entry: WeightsEntry, url: str, actual: str) -> WeightsError:
    """The one-line error for a downloaded file whose SHA256 is not the registered one."""
    return WeightsError(f'{entry.name!r} from {url} has the wrong SHA256 (expected {entry.sha256}, '
                        f'got {actual}); the file was not kept')


def _sha256(path: Path) -> str:
    """The SHA256 of a file, lower-case hex."""
    with open(path, 'rb') as file:
        return hashlib.file_digest(file, 'sha256').hexdigest()
