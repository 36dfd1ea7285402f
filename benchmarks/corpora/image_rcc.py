"""Minimal reader for Qt binary resource bundles (.rcc), enough to pull photos out.

gcompris-qt-data ships its photos inside .rcc files and Debian has no standalone
`rcc` binary without pulling in the whole Qt toolchain, so the benchmark reads
the format itself: header, a tree of fixed-size nodes, a names table and a data
table.  Only what the corpus needs is supported (zlib and uncompressed entries;
zstd entries are skipped rather than adding a dependency for a few icons).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_FLAG_COMPRESSED = 0x01
_FLAG_DIRECTORY = 0x02
_FLAG_ZSTD = 0x04


def _name(blob: bytes, names_at: int, offset: int) -> str:
    (length,) = struct.unpack_from(">H", blob, names_at + offset)
    start = names_at + offset + 6  # skip the 2-byte length and the 4-byte hash
    return blob[start : start + 2 * length].decode("utf-16-be")


def iter_rcc(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (path inside the bundle, file content) for every file in an .rcc."""
    blob = path.read_bytes()
    if blob[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource bundle")
    version, tree_at, data_at, names_at = struct.unpack_from(">IIII", blob, 4)
    # Format 2 added an 8-byte modification time to every node.
    node_size = 14 if version < 2 else 22

    def walk(node: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree_at + node * node_size
        name_off, flags = struct.unpack_from(">IH", blob, base)
        name = "" if node == 0 else _name(blob, names_at, name_off)
        full = f"{prefix}/{name}" if name else prefix
        if flags & _FLAG_DIRECTORY:
            count, first = struct.unpack_from(">II", blob, base + 6)
            for child in range(first, first + count):
                yield from walk(child, full)
            return
        (data_off,) = struct.unpack_from(">I", blob, base + 10)
        (size,) = struct.unpack_from(">I", blob, data_at + data_off)
        payload = blob[data_at + data_off + 4 : data_at + data_off + 4 + size]
        if flags & _FLAG_ZSTD:
            return
        if flags & _FLAG_COMPRESSED:
            payload = zlib.decompress(payload[4:])  # 4-byte uncompressed length first
        yield full, payload

    yield from walk(0, "")
