"""Input checksums, hashed ahead by the command line while it imports."""

import hashlib
import os
import threading

from pipeline.runtime import checksums
from pipeline.runtime.checksums import checksum, prefetch


def test_a_shapefile_is_hashed_with_its_sidecars_in_a_fixed_order(tmp_path):
    for suffix, data in ((".shp", b"shapes"), (".dbf", b"table"), (".prj", b"crs")):
        (tmp_path / f"lu{suffix}").write_bytes(data)
    # .shp, then .dbf, then .prj (.shx and .cpg absent), as one stream
    expected = hashlib.sha256(b"shapes" + b"table" + b"crs").hexdigest()
    assert checksum(tmp_path / "lu.shp") == expected


def test_prefetched_digest_is_used_once_and_a_changed_file_is_hashed_again(tmp_path, monkeypatch):
    path = tmp_path / "socio.csv"
    path.write_bytes(b"a" * (3 * checksums.BLOCK + 5))  # several blocks and a tail
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    prefetch([path, tmp_path / "missing.gpkg"])  # a missing file is skipped, not an error
    calls = []  # files hashed by the caller itself (not by the prefetching thread)
    real = checksums._sha256

    def counted(p):
        if threading.current_thread() is threading.main_thread():
            calls.append(p)
        return real(p)

    monkeypatch.setattr(checksums, "_sha256", counted)
    assert checksum(path) == expected and calls == []  # served from the prefetch
    # written again after the prefetch (other size and time): hashed anew, not served stale
    prefetch([path])
    path.write_bytes(b"b" * 10)
    os.utime(path, ns=(1, 1))
    assert checksum(path) == hashlib.sha256(b"b" * 10).hexdigest() and calls == [path]
