"""The authors' trained LESRCNN weights by name: a small registry, a verified download and a cache.

Registry
    ``WEIGHTS`` maps a name (``lesrcnn_x2``, ``lesrcnn_x3``, ``lesrcnn_x4``) to a frozen
    :class:`WeightsEntry`: where the file lies in the authors' repository, its SHA256, the network
    and scale it belongs to, where it comes from and what may be done with it. The files are pinned
    to one upstream commit, so a name always means the same bytes.

Download
    :func:`weights_path` downloads a registered file with torch.hub's downloader (progress bar,
    hash check) from ``UPSTREAM_BASE_URL + relative_path``. ``LESRCNN_WEIGHTS_MIRROR=<base URL>``
    replaces the upstream base URL; the mirror keeps the upstream layout
    (``<mirror>/x2/lesrcnn_x2.pth``), and ``file://`` URLs work too. The full SHA256 is checked
    before the file is published, and a wrong file is refused with :class:`WeightsError`.

Cache
    ``$LESRCNN_WEIGHTS_DIR`` if set, else ``<torch.hub.get_dir()>/checkpoints/lesrcnn`` (by
    default ``~/.cache/torch/hub/checkpoints/lesrcnn``, moved by ``$TORCH_HOME``), beside the
    checkpoints torch.hub itself caches. Files are named ``<name>.pth``. A cached file is used only
    when its SHA256 matches the registry, so a corrupt one is downloaded again. Downloads are
    written under a temporary name beside the target and renamed into place once verified
    (:func:`lesrcnn_plugin.fileio.atomic_path`), so the cache never holds a partial or refused file.

:func:`resolve_weights` is the entry point for command lines: it takes an existing path or a
registered name.
"""
from __future__ import annotations

import difflib
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch.hub

from .errors import LESRCNNError
from .fileio import atomic_path

logger = logging.getLogger(__name__)

UPSTREAM_REPOSITORY = 'hellloxiaotian/LESRCNN'
UPSTREAM_COMMIT = 'e3729ed3884cbaa67c1534a1ac9626c71d670d27'
UPSTREAM_BASE_URL = f'https://github.com/{UPSTREAM_REPOSITORY}/raw/{UPSTREAM_COMMIT}/'
MIRROR_ENV = 'LESRCNN_WEIGHTS_MIRROR'
CACHE_ENV = 'LESRCNN_WEIGHTS_DIR'

_PAPER = ('C. Tian, R. Zhuge, Z. Wu, Y. Xu, W. Zuo, C. Chen, C.-W. Lin, "Lightweight Image '
          'Super-Resolution with Enhanced CNN", Knowledge-Based Systems 205 (2020) 106235')
_SOURCE = f'{_PAPER}; https://github.com/{UPSTREAM_REPOSITORY} at commit {UPSTREAM_COMMIT}'
_LICENCE = ('no licence stated: the upstream README at that commit names none and no licence file '
            'was found in the repository; the weights are the authors\' work, so cite the paper '
            'and ask the authors before redistributing them')


class WeightsError(LESRCNNError):
    """A weights name or file that cannot be used: unknown name, failed download, wrong SHA256."""


@dataclass(frozen=True)
class WeightsEntry:
    """One released weights file.

    Attributes:
        name: the registry key, e.g. ``lesrcnn_x2``.
        relative_path: the file's path in the upstream repository (and on a mirror).
        sha256: the file's full SHA256, lower-case hex.
        arch: the network the state dict belongs to (a name in ``lesrcnn_plugin.archs``).
        scale: the upscale factor the network was trained for.
        source: the paper and the repository at the pinned commit.
        licence: what the upstream repository states about reuse.
    """

    name: str
    relative_path: str
    sha256: str
    arch: str
    scale: int
    source: str
    licence: str


def _official(scale: int, sha256: str) -> WeightsEntry:
    """The registry entry of the authors' single-scale x``scale`` weights."""
    name = f'lesrcnn_x{scale}'
    return WeightsEntry(name=name, relative_path=f'x{scale}/{name}.pth', sha256=sha256, arch='LESRCNN',
                        scale=scale, source=_SOURCE, licence=_LICENCE)


# SHA256s of the files at UPSTREAM_COMMIT, as listed in ../shared/weights/lesrcnn_official/SHA256SUMS.
WEIGHTS: dict[str, WeightsEntry] = {entry.name: entry for entry in (
    _official(2, '66b4b2ddb268486f78a3d49758a016417e64f602ef963667b5ce34039200bcde'),
    _official(3, '95cbabcbd243e5582118d3bba44fd751a80dd19a291d5f3b1ebd7c9b3b61346a'),
    _official(4, '1de9d0e1b1817de43fba3ce9c4b966fd8cde81e160d7432a844d6a2296f90cbc'),
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
        progress: show torch.hub's progress bar on stderr while downloading.

    Returns:
        The path of the cached file.

    Raises:
        WeightsError: the name is not registered, the download failed, or the downloaded file's
            SHA256 differs from the registry (the file is then not kept).
    """
    entry = _entry(name)
    cached = weights_dir() / f'{entry.name}{PurePosixPath(entry.relative_path).suffix}'
    if cached.is_file():
        actual = _sha256(cached)
        if actual == entry.sha256:
            return cached
        logger.warning('cached %s has SHA256 %s, expected %s: downloading it again', cached, actual, entry.sha256)
        cached.unlink(missing_ok=True)  # useless now, and nobody should pick it up by path either
    url = weights_url(name)
    with atomic_path(cached) as tmp:
        _download(entry, url, tmp, progress)
        actual = _sha256(tmp)  # torch.hub checked the hash too; this check does not depend on it
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
    """The registered names as one comma-separated line, those resembling ``query`` first."""
    closest = difflib.get_close_matches(query, list_weights(), n=len(WEIGHTS))
    return ', '.join(closest + [name for name in list_weights() if name not in closest])


def _download(entry: WeightsEntry, url: str, destination: Path, progress: bool) -> None:
    """Download ``url`` to ``destination`` with torch.hub, turning its failures into one-line WeightsErrors."""
    try:
        # torch.hub creates its partial file before it parses the URL, and a malformed URL's
        # ValueError escapes its clean-up; parsing the URL first keeps that file out of the cache.
        urllib.request.Request(url)
    except ValueError as error:
        raise _download_failed(entry, url, error) from None
    try:
        torch.hub.download_url_to_file(url, str(destination), hash_prefix=entry.sha256, progress=progress)
    except RuntimeError as error:
        # torch.hub raises RuntimeError only for a hash mismatch, and it has already deleted the
        # file, so the actual digest survives only in its message: 'expected "...", got "<digest>"'.
        digest = re.search(r'got "([0-9a-f]+)"', str(error))
        raise _hash_mismatch(entry, url, digest[1] if digest else str(error)) from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
        # An HTTPError's own text carries the status code; a URLError's reason is the useful part.
        reason = error if isinstance(error, urllib.error.HTTPError) else getattr(error, 'reason', error)
        raise _download_failed(entry, url, reason) from error


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
