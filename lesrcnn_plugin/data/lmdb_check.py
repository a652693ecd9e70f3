"""Check an LMDB's ``data.mdb`` with ordinary reads before LMDB maps it into memory.

LMDB reads a database through a memory map as large as the database's recorded map size. Reading
a page past the end of a truncated file, or following a damaged page's offsets there, kills the
process with SIGBUS: no exception, no message, exit status 135. ``check_data_file`` reads what LMDB
would follow, with ``pread``, and refuses the file first:

* the file is at least as long as the pages its newest meta page counts (``last_pgno + 1`` pages of
  ``psize`` bytes);
* every branch and leaf page of the main tree, walked from the root: the page is of its kind and
  numbers itself, its node offsets, keys and inline values lie within the page, its children and
  the overflow pages of its large values lie within the file.

Then every lookup and every value LMDB hands out lies within the file. Only the tree is read, not
the values (about 300 pages of 4 KiB for DIV2K's 32,208 sub-images): cheap enough for every start
of a run. Values damaged inside (a PNG whose bytes changed) are found when they are decoded.

The layout read here is LMDB's on-disk format (``mdb.c``, 64-bit builds; the format py-lmdb writes).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from ..errors import DataError

_PAGE_HEADER = struct.Struct('<QHHHH')  # pgno, pad, flags, lower, upper: 16 bytes
_NODE_HEADER = struct.Struct('<HHHH')  # lo, hi, flags, ksize: 8 bytes
_META = struct.Struct('<II')  # magic, version, right after the page header
_MAGIC = 0xBEEFC0DE
_P_BRANCH, _P_LEAF, _P_META, _P_LEAF2 = 0x01, 0x02, 0x08, 0x20
_F_BIGDATA = 0x01
_REBUILD = 'rebuild it (lesrcnn-prepare-div2k --overwrite)'


def _meta(header: bytes, offset: int) -> dict | None:
    """The fields of the meta page at ``offset`` of ``header`` that the check needs; ``None`` if it is not one."""
    if len(header) < offset + 152:
        return None
    _, _, flags, _, _ = _PAGE_HEADER.unpack_from(header, offset)
    magic, _version = _META.unpack_from(header, offset + 16)
    if not flags & _P_META or magic != _MAGIC:
        return None
    # MDB_meta after the 16-byte page header: magic, version, address, mapsize, then two MDB_db
    # records of 48 bytes (the free list's, whose first field holds the page size, and the main
    # tree's: pad, flags, depth, branch/leaf/overflow pages, entries, root), last page, txn id.
    psize, = struct.unpack_from('<I', header, offset + 40)
    depth, = struct.unpack_from('<H', header, offset + 88 + 6)
    entries, root = struct.unpack_from('<QQ', header, offset + 88 + 32)
    last_pgno, txnid = struct.unpack_from('<QQ', header, offset + 136)
    return {'psize': psize, 'depth': depth, 'entries': entries, 'root': root, 'last_pgno': last_pgno,
            'txnid': txnid}


def check_data_file(db_path: str | os.PathLike) -> None:
    """Refuse a ``data.mdb`` that LMDB would read past its end.

    Raises:
        DataError: one line naming the database: truncated (its size and the size its header
            records), damaged (the page, and the key where one can be read), or not an LMDB file.
    """
    path = Path(db_path) / 'data.mdb'
    with open(path, 'rb') as handle:
        fd = handle.fileno()
        size = os.fstat(fd).st_size
        if size == 0:
            raise DataError(f'{db_path}: data.mdb is empty; {_REBUILD}')
        first = os.pread(fd, 152, 0)
        psize = _meta(first, 0)['psize'] if _meta(first, 0) else 0
        if psize < 512 or psize & (psize - 1):
            raise DataError(f'{db_path}: data.mdb is not an LMDB file (no valid header); {_REBUILD}')
        metas = [meta for meta in (_meta(first, 0), _meta(os.pread(fd, 152, psize), 0)) if meta]
        meta = max(metas, key=lambda m: m['txnid'])
        needed = (meta['last_pgno'] + 1) * psize
        if size < needed:
            raise DataError(f'{db_path}: data.mdb is truncated: {size} bytes, its header counts '
                            f'{meta["last_pgno"] + 1} pages of {psize} bytes ({needed} bytes); {_REBUILD}')
        if meta['entries']:
            _TreeCheck(fd, db_path, psize, meta['last_pgno']).page(meta['root'], meta['depth'])


class _TreeCheck:
    """Walks the main tree of one ``data.mdb``, raising ``DataError`` at the first damaged page."""

    def __init__(self, fd: int, db_path, psize: int, last_pgno: int) -> None:
        self.fd, self.db_path, self.psize, self.last_pgno = fd, db_path, psize, last_pgno

    def damaged(self, pgno: int, what: str, key: bytes | None = None) -> DataError:
        where = f' (at key {key.decode("ascii", "replace")!r})' if key else ''
        return DataError(f'{self.db_path}: data.mdb is damaged: page {pgno} {what}{where}; {_REBUILD}')

    def page(self, pgno: int, levels: int) -> None:
        """Check page ``pgno`` and, for a branch page, the ``levels - 1`` levels below it."""
        if not 2 <= pgno <= self.last_pgno:
            raise self.damaged(pgno, f'is outside the file (pages 2 to {self.last_pgno})')
        data = os.pread(self.fd, self.psize, pgno * self.psize)
        own, _, flags, lower, upper = _PAGE_HEADER.unpack_from(data)
        branch = bool(flags & _P_BRANCH)
        if own != pgno or flags & _P_LEAF2 or branch == bool(flags & _P_LEAF) or branch != (levels > 1):
            raise self.damaged(pgno, 'is not the tree page it should be')
        if not _PAGE_HEADER.size <= lower <= upper <= self.psize or lower % 2:
            raise self.damaged(pgno, f'has its free space at bytes {lower} to {upper}')
        for index in range((lower - _PAGE_HEADER.size) // 2):
            offset, = struct.unpack_from('<H', data, _PAGE_HEADER.size + 2 * index)
            if not upper <= offset <= self.psize - _NODE_HEADER.size:
                raise self.damaged(pgno, f'lists node {index} at byte {offset}, outside its nodes')
            lo, hi, node_flags, ksize = _NODE_HEADER.unpack_from(data, offset)
            key_end = offset + _NODE_HEADER.size + ksize
            key = data[offset + _NODE_HEADER.size:key_end] if key_end <= self.psize else None
            if branch:
                if key is None:
                    raise self.damaged(pgno, f'has a key of {ksize} bytes running past its end')
                self.page(lo | hi << 16 | node_flags << 32, levels - 1)
            else:
                self.leaf_value(pgno, key, key_end, lo | hi << 16, node_flags, ksize, data)

    def leaf_value(self, pgno: int, key: bytes | None, value_at: int, value_size: int, node_flags: int,
                   ksize: int, data: bytes) -> None:
        if key is None:
            raise self.damaged(pgno, f'has a key of {ksize} bytes running past its end')
        if not node_flags & _F_BIGDATA:
            if value_at + value_size > self.psize:
                raise self.damaged(pgno, f'has a value of {value_size} bytes running past its end', key)
            return
        if value_at + 8 > self.psize:
            raise self.damaged(pgno, 'has a value reference running past its end', key)
        first, = struct.unpack_from('<Q', data, value_at)
        pages = (_PAGE_HEADER.size + value_size + self.psize - 1) // self.psize
        if not 2 <= first or first + pages - 1 > self.last_pgno:
            raise self.damaged(pgno, f'has a value of {value_size} bytes at pages {first} to {first + pages - 1}, '
                                     f'outside the file (pages 2 to {self.last_pgno})', key)


__all__ = ['check_data_file']
