"""Read any checkpoint file as inert data: nothing in a file, however crafted, runs code.

``load_untrusted`` reads every checkpoint this project meets: plain and official state dicts,
BasicSR ``{'params': ...}`` weights and ``.state`` training states, MMagic/mmengine weights and
training checkpoints (``iter_*.pth``). It is ``torch.load(weights_only=True)`` (torch's restricted
unpickler: tensors, containers, numbers, strings, no calls but torch's own rebuild functions) plus
inert stand-ins for the few globals an mmengine training checkpoint names besides those:

* ``numpy.dtype``, ``numpy.ndarray``, ``numpy.core.multiarray._reconstruct`` and ``.scalar``: the
  message hub's logs and ``best_score``. Only numeric dtypes, with the state numpy itself writes,
  are accepted; arrays and scalars are rebuilt from their raw bytes, never by numpy's unpickling
  (whose dtype ``__setstate__`` can turn raw bytes into object pointers).
* ``mmengine.logging.history_buffer.HistoryBuffer``: a record of its three data attributes,
  type-checked, rebuilt through ``HistoryBuffer``'s constructor.
* ``builtins.getattr``: ``HistoryBuffer.__getstate__`` adds ``statistics_methods`` (its methods
  ``min``, ``max``, ``current``, ``mean``), which pickle protocol 2 (``torch.save``'s) writes as
  ``getattr(HistoryBuffer, 'min')``. The stand-in looks nothing up: it returns the name of one of
  these four methods and refuses anything else.

Admitting the real ``getattr`` (as this package once did) lets a file reach any attribute of any
object it can name, e.g. ``getattr(getattr(getattr, '__self__'), 'exec')``; mmengine's
``HistoryBuffer.__setstate__`` stores whatever state it is given in the instance's ``__dict__``, so
a file can plant ``__reduce_ex__`` on a buffer, which ``copy.deepcopy`` (``MessageHub.load_state_dict``
copies ``runtime_info``) then calls: arbitrary code at ``--resume``. For the same reason, once
unpickled, no object may carry an instance attribute named like a special method
(``weights_only`` itself lets a file set attributes on an ``OrderedDict`` or a tensor).

Nothing is allocated for a file's tensors before the sizes it declares are checked (``check_archive``):
torch allocates each storage at the size its pickle declares, so a 6 MB file could otherwise claim
6 GB. The pickle is first read with every storage on the ``meta`` device (no memory), then each
storage must fit in its record of the zip archive (in the file, for torch's older format), and all
of them together within ``max_checkpoint_bytes()`` (2 GiB, or ``LESRCNN_MAX_CHECKPOINT_BYTES``).
TorchScript archives (``code/``, ``constants.pkl``) are refused: loading one runs its code.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import _weights_only_unpickler

from .errors import CheckpointError, ConfigError

# What HistoryBuffer.__getstate__ writes: its data and the names of its default statistics methods.
_HISTORY_BUFFER_FIELDS = frozenset({'max_length', '_log_history', '_count_history'})
_STATISTICS_METHODS = frozenset({'min', 'max', 'current', 'mean'})
# numpy dtype kinds of plain numbers: bool, signed and unsigned integers, floats, complex numbers.
_NUMERIC_KINDS = frozenset('biufc')
# The state numpy (format version 3) writes for a numeric dtype, but for its byte order.
_NUMERIC_DTYPE_STATE = (None, None, None, -1, -1, 0)

#: Environment variable overriding ``DEFAULT_MAX_CHECKPOINT_BYTES``.
MAX_BYTES_VARIABLE = 'LESRCNN_MAX_CHECKPOINT_BYTES'
#: Most bytes all tensors of one checkpoint may take: the family's weights are a few MB, an mmengine
#: training checkpoint of a large network a few hundred.
DEFAULT_MAX_CHECKPOINT_BYTES = 2 * 1024**3


def load_untrusted(path: str | os.PathLike, map_location='cpu') -> dict:
    """Read a checkpoint file as data (``map_location`` as in ``torch.load``); run nothing from it.

    Raises ``CheckpointError`` with one line naming the file and what is wrong with it.
    """
    path = checkpoint_file(path)
    limit = max_checkpoint_bytes()
    try:
        with torch.serialization.safe_globals(_inert_globals()):
            check_archive(path, limit)
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        checkpoint = _materialise(checkpoint, {})
    except CheckpointError as exc:
        raise CheckpointError(f'{path}: {exc}') from None
    except Exception as exc:  # torch raises many types for corrupt files; none may escape as a traceback
        raise CheckpointError(f'{path}: {_unpickling_problem(exc)}') from exc
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'{path}: holds a {type(checkpoint).__name__}, not a dict of weights or training state')
    return checkpoint


def checkpoint_file(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it is an existing file; otherwise ``CheckpointError`` saying what it is."""
    if not os.fspath(path):  # Path('') is '.', the current folder
        raise CheckpointError("'': an empty name is not a checkpoint file")
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f'{path}: is a folder, not a checkpoint file')
    if not path.is_file():
        raise CheckpointError(f'{path}: no such checkpoint file')
    return path


def max_checkpoint_bytes() -> int:
    """The most bytes the tensors of one checkpoint may declare: ``LESRCNN_MAX_CHECKPOINT_BYTES`` or 2 GiB."""
    text = os.environ.get(MAX_BYTES_VARIABLE, '').strip()
    if not text:
        return DEFAULT_MAX_CHECKPOINT_BYTES
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(f'{MAX_BYTES_VARIABLE}={text!r}: give a positive number of bytes')
    return limit


def check_archive(path: Path, limit: int) -> None:
    """Refuse a file before torch allocates its tensors: a TorchScript archive, a storage larger than its
    record, more than ``limit`` bytes of tensors, or not a torch checkpoint at all.

    Call inside ``safe_globals(_inert_globals())``: the pickle is read by torch's restricted unpickler.
    """
    with open(path, 'rb') as handle:
        is_zip = handle.read(4) == b'PK\x03\x04'  # what torch.load looks at to choose its reader
        handle.seek(0)
        if is_zip:
            _check_zip_archive(handle, limit)
        else:
            _check_legacy_file(handle, os.fstat(handle.fileno()).st_size, limit)


def _check_zip_archive(handle, limit: int) -> None:
    """torch's format since 1.6: ``<name>/data.pkl`` and one record ``<name>/data/<key>`` per storage."""
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f'a damaged zip archive ({exc})') from None
    with archive:
        records = {info.filename: info for info in archive.infolist()}
        if not records:
            raise CheckpointError('an empty zip archive, not a PyTorch checkpoint')
        # torch's reader names every record relative to the first one's folder.
        folder = next(iter(records)).split('/', 1)[0] + '/'
        names = [name[len(folder):] for name in records if name.startswith(folder)]
        if 'constants.pkl' in names or any(name.startswith('code/') for name in names):
            raise CheckpointError('is a TorchScript archive (it holds code/ or constants.pkl), refused: loading one '
                                  'runs the code inside it; give the weights as a state dict '
                                  '(torch.save(model.state_dict(), path))')
        data = records.get(folder + 'data.pkl')
        if data is None:
            raise CheckpointError('a zip archive without data.pkl, not a PyTorch checkpoint')
        if data.file_size > limit:
            raise _over_limit(data.file_size, limit, 'its pickle data.pkl holds')
        declared = _declared_storages(io.BytesIO(archive.read(data)), legacy=False)
    for key, nbytes in declared.items():
        record = records.get(f'{folder}data/{key}')
        held = record.file_size if record is not None else 0
        if nbytes > held:
            raise CheckpointError(f'storage {key} declares {nbytes:,} bytes but its record data/{key} holds {held:,}: '
                                  'a corrupt or crafted file, refused before allocating')
    total = sum(declared.values())
    if total > limit:
        raise _over_limit(total, limit, 'its tensors declare')


def _check_legacy_file(handle, file_size: int, limit: int) -> None:
    """torch's format before 1.6 (the authors' files): magic number, protocol, system information and
    the object's pickle, then the storage keys and each storage's bytes."""
    try:
        magic_number = _weights_only_unpickler.load(handle, encoding='utf-8')
    except Exception:  # noqa: BLE001  (whatever the bytes are, they are not torch's)
        magic_number = None
    if magic_number != torch.serialization.MAGIC_NUMBER:
        raise CheckpointError('not a PyTorch checkpoint: neither a zip archive nor a file written by torch.save')
    for _ in ('protocol version', 'system information'):
        _weights_only_unpickler.load(handle, encoding='utf-8')
    declared = _declared_storages(handle, legacy=True)
    total = sum(declared.values())
    # Each storage's bytes follow the pickles in the file itself, after an 8-byte size.
    held = file_size - handle.tell()
    if total > held:
        raise CheckpointError(f'its tensors declare {total:,} bytes but the file holds {max(held, 0):,} after its '
                              'pickles: a corrupt or crafted file, refused before allocating')
    if total > limit:
        raise _over_limit(total, limit, 'its tensors declare')


def _declared_storages(stream, legacy: bool) -> dict:
    """{storage key: bytes declared} of the pickle in ``stream``, read with every storage on ``meta``."""
    declared = {}

    def meta_storage(saved_id):
        fields = 6 if legacy else 5  # ('storage', type, key, location, numel[, view])
        if not (isinstance(saved_id, tuple) and len(saved_id) == fields and saved_id[0] in ('storage', b'storage')):
            raise CheckpointError(f'a persistent id that is not a storage: {saved_id!r:.80}')
        storage_type, key, numel = saved_id[1], saved_id[2], saved_id[4]
        dtype = torch.uint8 if storage_type is torch.UntypedStorage else getattr(storage_type, 'dtype', None)
        if not isinstance(dtype, torch.dtype) or type(numel) is not int or numel < 0:
            raise CheckpointError(f'storage {key!r:.40} of {storage_type!r:.40} with {numel!r:.40} elements')
        nbytes = numel * torch._utils._element_size(dtype)
        declared.setdefault(key, nbytes)  # torch allocates a key once, at its first declaration
        return torch.storage.TypedStorage(wrap_storage=torch.UntypedStorage(nbytes, device='meta'), dtype=dtype,
                                          _internal=True)

    unpickler = _weights_only_unpickler.Unpickler(stream, encoding='utf-8')
    unpickler.persistent_load = meta_storage
    unpickler.load()
    return declared


def _over_limit(nbytes: int, limit: int, what: str) -> CheckpointError:
    return CheckpointError(f'{what} {nbytes:,} bytes, above the limit of {limit:,} '
                           f'(raise it with {MAX_BYTES_VARIABLE}=BYTES if the file is trusted to be that large)')


def _unpickling_problem(exc: Exception) -> str:
    """One line for an error of ``torch.load``: the global it refused, else the first line of its message.

    torch re-raises its unpickler's error inside a long explanation of how to load the file anyway
    (which is the point of refusing); the original error is the context of the one raised.
    """
    original = exc.__context__ if isinstance(exc.__context__, pickle.UnpicklingError) else exc
    message = str(original)
    refused = re.search(r'GLOBAL (\S+) (?:was not an allowed global|whose module)', message)
    if refused:
        # torch writes builtins without their module ('exec' for builtins.exec).
        name = refused[1] if '.' in refused[1] else f'builtins.{refused[1]}'
        return f'refuses to load global {name}'
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return f'cannot read checkpoint ({first_line})'


def _inert_globals() -> list[tuple[object, str]]:
    """The stand-ins, under the global names an mmengine training checkpoint uses (numpy 1 and 2)."""
    names = {
        'builtins.getattr': _statistics_method_name,
        'numpy.dtype': _DTypeRecord,
        'numpy.ndarray': _ArrayRecord,
        'mmengine.logging.history_buffer.HistoryBuffer': _HistoryBufferRecord,
    }
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        names[f'{module}._reconstruct'] = _empty_array
        names[f'{module}.scalar'] = _numeric_scalar
    return [(stand_in, name) for name, stand_in in names.items()]


def _statistics_method_name(owner, name):
    """``getattr(HistoryBuffer, name)`` in a HistoryBuffer's state: the method's name, nothing looked up."""
    if owner is _HistoryBufferRecord and name in _STATISTICS_METHODS:
        return name
    raise CheckpointError(f'refuses to load global builtins.getattr (asked for {name!r}): it is read only as '
                          f'getattr(HistoryBuffer, name) for the methods {", ".join(sorted(_STATISTICS_METHODS))}')


class _Record:
    """Inert data read in place of a numpy or mmengine object; ``materialise`` builds the real one.

    Unhashable, so that a record cannot hide in a set or a dict key, where it would not be replaced.
    """

    __hash__ = None

    def materialise(self):
        raise NotImplementedError


class _DTypeRecord(_Record):
    """``numpy.dtype(spec, align, copy)``, then its state: numeric dtypes only."""

    def __init__(self, spec, align=False, copy=True):
        import numpy as np

        if not isinstance(spec, str) or type(align) is not bool or type(copy) is not bool:
            raise CheckpointError(f'refuses a numpy dtype built from {spec!r}, {align!r}, {copy!r}')
        try:
            self.dtype = np.dtype(spec)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f'refuses the numpy dtype {spec!r} ({exc})') from None
        if self.dtype.kind not in _NUMERIC_KINDS or self.dtype.fields is not None:
            raise CheckpointError(f'refuses the numpy dtype {spec!r}: only numbers are read')

    def __setstate__(self, state):
        import numpy as np

        if not (isinstance(state, tuple) and len(state) == 8 and state[0] == 3 and state[1] in ('<', '>', '|', '=')
                and state[2:] == _NUMERIC_DTYPE_STATE):
            raise CheckpointError(f'refuses a numpy {self.dtype} dtype whose state gives it fields, flags or a '
                                  'layout: only plain numbers are read')
        self.dtype = np.dtype(state[1] + self.dtype.str[1:])

    def materialise(self):
        return self.dtype


def _empty_array(subtype, shape, typecode):
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``: an array record, filled by its state."""
    if subtype is not _ArrayRecord or shape != (0,) or typecode != b'b':
        raise CheckpointError('refuses numpy._reconstruct other than for a plain ndarray')
    return _ArrayRecord()


class _ArrayRecord(_Record):
    """A numpy array of numbers, built from its raw bytes when its state arrives."""

    array = None

    def __setstate__(self, state):
        import numpy as np

        if not (isinstance(state, tuple) and len(state) == 5):
            raise CheckpointError('refuses a numpy array state that is not (version, shape, dtype, fortran, bytes)')
        version, shape, dtype, fortran_order, raw = state
        if not (version == 1 and isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
                and isinstance(dtype, _DTypeRecord) and type(fortran_order) is bool and isinstance(raw, bytes)):
            raise CheckpointError('refuses a numpy array state that is not (1, shape, numeric dtype, bool, bytes)')
        size = math.prod(shape)
        if len(raw) != size * dtype.dtype.itemsize:
            raise CheckpointError(f'a numpy array of shape {shape} and dtype {dtype.dtype} holds {len(raw)} bytes')
        order = 'F' if fortran_order else 'C'
        self.array = np.frombuffer(raw, dtype=dtype.dtype, count=size).reshape(shape, order=order).copy(order=order)

    def materialise(self):
        if self.array is None:
            raise CheckpointError('a numpy array without its data')
        return self.array


def _numeric_scalar(dtype, raw):
    """``numpy.core.multiarray.scalar(dtype, raw)``: a number of a numeric dtype, from its bytes."""
    import numpy as np

    if not isinstance(dtype, _DTypeRecord) or not isinstance(raw, bytes) or len(raw) != dtype.dtype.itemsize:
        raise CheckpointError('refuses a numpy scalar that is not the bytes of one number')
    return np.frombuffer(raw, dtype=dtype.dtype)[0]


class _HistoryBufferRecord(_Record):
    """mmengine's ``HistoryBuffer``: ``max_length`` and two 1-D logs, refusing any other attribute."""

    fields = None

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise CheckpointError(f'refuses a HistoryBuffer whose state is a {type(state).__name__}, not a dict')
        if set(state) - {'statistics_methods'} != _HISTORY_BUFFER_FIELDS:
            raise CheckpointError(f'refuses a HistoryBuffer with the attributes {", ".join(map(str, state))}: '
                                  f'only {", ".join(sorted(_HISTORY_BUFFER_FIELDS))} and statistics_methods are read')
        methods = state.get('statistics_methods', {})
        if not (isinstance(methods, dict) and set(methods) <= _STATISTICS_METHODS
                and all(key == value for key, value in methods.items())):
            raise CheckpointError('refuses a HistoryBuffer whose statistics_methods are not its own methods')
        max_length = state['max_length']
        if type(max_length) is not int or max_length < 1:
            raise CheckpointError(f'refuses a HistoryBuffer with max_length {max_length!r}')
        logs = [_history(state[name]) for name in ('_log_history', '_count_history')]
        if logs[0].shape != logs[1].shape:
            raise CheckpointError(f'a HistoryBuffer with {len(logs[0])} values but {len(logs[1])} counts')
        self.fields = dict(log_history=logs[0], count_history=logs[1], max_length=max_length)

    def materialise(self):
        """A real ``HistoryBuffer``; without mmengine (a BasicSR-only install) the record stands in."""
        if self.fields is None:
            raise CheckpointError('a HistoryBuffer without its data')
        try:
            from mmengine.logging import HistoryBuffer
        except ImportError:
            return self
        return HistoryBuffer(**self.fields)


def _history(record):
    if not isinstance(record, _ArrayRecord) or record.materialise().ndim != 1:
        raise CheckpointError('refuses a HistoryBuffer log that is not a 1-D numpy array')
    return record.array


def _materialise(obj, done: dict):
    """Replace the records in ``obj`` by real objects, in place where containers allow it.

    Also refuses instance attributes named like special methods anywhere: ``copy.deepcopy`` and
    pickle look those up on the instance. ``done`` maps ``id`` of each object seen to (object, result),
    keeping the object alive so that its ``id`` stays its own.
    """
    if id(obj) in done:
        return done[id(obj)][1]
    if callable(obj) and getattr(obj, '__module__', None) == __name__:
        # A stand-in itself, named by a global but never called: it would reach the caller as a value.
        raise CheckpointError('refuses a numpy or mmengine global used as a value, not to build data')
    if isinstance(obj, _Record):
        result = obj.materialise()
    elif type(obj) is tuple:  # not torch.Size, a tuple subclass
        result = tuple(_materialise(item, done) for item in obj)
    else:
        result = obj
    done[id(obj)] = (obj, result)
    if result is obj:
        _materialise_contents(obj, done)
    return result


def _materialise_contents(obj, done: dict) -> None:
    attributes = vars(obj) if hasattr(obj, '__dict__') and not isinstance(obj, type) else {}
    special = [name for name in attributes if name.startswith('__') and name.endswith('__')]
    if special:
        raise CheckpointError(f'refuses {type(obj).__name__} attribute(s) {", ".join(special)}: copy and pickle '
                              'look special methods up on the instance')
    for name, value in attributes.items():
        attributes[name] = _materialise(value, done)
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _materialise(value, done)
    elif isinstance(obj, list):
        obj[:] = [_materialise(item, done) for item in obj]


__all__ = ['DEFAULT_MAX_CHECKPOINT_BYTES', 'MAX_BYTES_VARIABLE', 'check_archive', 'checkpoint_file',
           'load_untrusted', 'max_checkpoint_bytes']
