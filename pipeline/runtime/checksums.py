"""sha256 of the input files (the resume cache's key and the provenance), started early.

One public function per use: :func:`checksum` of a file, and :func:`prefetch`, which the command
line calls before it imports the heavy libraries: a national run's inputs are ~370 MB (~1.2 s
of CPU to hash), and the ~1 s of imports leaves the second core idle. :func:`checksum` then
returns the digest computed meanwhile, if the file has not changed since (same size and
modification time); otherwise it hashes the file itself. Only the standard library is imported
here.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

#: bytes hashed per read: large, so that the hashing thread needs the GIL (held by the imports)
#: rarely; hashlib releases it while it hashes a block
BLOCK = 8 << 20

_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")

_lock = threading.Lock()
_early: dict[tuple[Path, tuple[int, int]], Future] = {}


def checksum(path: Path) -> str:
    """sha256 over a file and, for a shapefile, its sidecar files."""
    path = Path(path)
    with _lock:
        job = _early.pop((path.resolve(), _stamp(path)), None)
    if job is not None:
        try:
            return job.result()
        except OSError:
            pass  # hashed again below, raising where the caller expects it
    return _sha256(path)


def prefetch(paths: Iterable[Path]) -> None:
    """Start hashing ``paths`` in a background thread (missing or unreadable files are skipped:
    their readers report them)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checksums")
    with _lock:
        for path in map(Path, paths):
            try:
                key = (path.resolve(), _stamp(path))
            except OSError:
                continue
            _early[key] = pool.submit(_sha256, path)
    pool.shutdown(wait=False)


def _stamp(path: Path) -> tuple[int, int]:
    """Size and modification time of the file and its shapefile sidecars, together."""
    size = mtime = 0
    for p in _parts(path):
        st = p.stat()
        size, mtime = size + st.st_size, max(mtime, st.st_mtime_ns)
    return size, mtime


def _parts(path: Path) -> list[Path]:
    if path.is_dir():  # a file geodatabase (.gdb folder): every file in it, in name order
        return sorted(p for p in path.rglob("*") if p.is_file())
    if path.suffix.lower() == ".shp":
        return [path.with_suffix(s) for s in _SHAPEFILE_PARTS if path.with_suffix(s).exists()]
    return [path]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    buffer = memoryview(bytearray(BLOCK))
    for p in _parts(path):
        with p.open("rb", buffering=0) as f:
            while n := f.readinto(buffer):
                h.update(buffer[:n])
    return h.hexdigest()
