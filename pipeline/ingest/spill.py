"""Land use spilled to disk: one year's polygons, already in the equal-area CRS and cleaned,
written batch by batch as they are read and read back a tile at a time.

Used when a run is tiled (``--tiles``, ``--memory-limit``; see :mod:`pipeline.zonal.tiles`): the file is
streamed once, so memory holds one read batch, not the year. The spill is an Arrow IPC file with
one row per polygon in the file's order — ``row`` (the feature's 0-based row in the input file),
its bounding box ``xmin, ymin, xmax, ymax`` and its geometry as WKB, which keeps every coordinate
bit for bit. It is read back a record batch at a time, keeping only a tile's rows.
"""

from __future__ import annotations

import contextlib
import ctypes
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import shapely

from pipeline.geom.rings import Rings

_BOUNDS = ("xmin", "ymin", "xmax", "ymax")


class SpillWriter:
    """Appends batches of polygons to a new spill file."""

    def __init__(self, path: Path):
        self.path = path
        self._sink = pa.OSFile(str(path), "wb")
        schema = pa.schema(
            [("row", pa.int64()), *((b, pa.float64()) for b in _BOUNDS), ("wkb", pa.large_binary())]
        )
        self._writer = pa.ipc.new_file(self._sink, schema)
        self.n = 0
        self._open = True
        self._bounds: list[np.ndarray] = []

    def add(self, rows: np.ndarray, geoms: np.ndarray) -> None:
        bounds = shapely.bounds(geoms)
        columns = {"row": pa.array(rows, type=pa.int64())}
        columns.update({b: pa.array(bounds[:, k]) for k, b in enumerate(_BOUNDS)})
        # 64-bit offsets: a tile may hold more than 2 GiB of WKB
        columns["wkb"] = pa.array(shapely.to_wkb(geoms), type=pa.large_binary())
        self._writer.write_table(pa.table(columns))
        self.n += len(rows)
        self._bounds.append(bounds)

    def close(self) -> None:
        if self._open:
            self._writer.close()
            self._sink.close()
            self._open = False

    def spill(self, codes: np.ndarray, crs: object) -> Spill:
        """The written file, to be read (``codes``: each row's class code)."""
        self.close()
        bounds = np.concatenate(self._bounds) if self._bounds else np.zeros((0, 4))
        return Spill(self.path, codes, crs, bounds)


@dataclass
class Spill:
    """One year's spilled polygons: ``codes[i]`` is the class code of the file's row ``i``,
    ``bounds`` every polygon's bounding box, (n, 4), in spill order (kept in memory, 32 bytes a
    polygon)."""

    path: Path
    codes: np.ndarray
    crs: object
    bounds: np.ndarray

    @property
    def n(self) -> int:
        """Polygons in the spill (the file's rows less the empty geometries dropped)."""
        return len(self.bounds)

    def read(self, keep: np.ndarray) -> tuple[gpd.GeoDataFrame, Rings | None]:
        """The polygons at spill positions ``keep`` (ascending): ``class_code``, ``row`` and
        geometry, as ingest gives them for a year read whole, and their Rings. The file is read
        a batch at a time (plain reads, not a memory map, which would count as resident)."""
        keep = np.asarray(keep, dtype=np.int64)
        parts = []
        with pa.OSFile(str(self.path)) as f:
            reader = pa.ipc.open_file(f)
            start = 0
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                lo, hi = np.searchsorted(keep, [start, start + batch.num_rows])
                if hi > lo:
                    parts.append(batch.take(pa.array(keep[lo:hi] - start)))
                start += batch.num_rows
        table = pa.Table.from_batches(parts, schema=reader.schema)
        wkb = table.column("wkb").combine_chunks()
        rows = table.column("row").to_numpy()
        out = gpd.GeoDataFrame(
            {"class_code": self.codes[rows], "row": rows},
            geometry=shapely.from_wkb(wkb.to_numpy(zero_copy_only=False)),
            crs=self.crs,
        )
        return out, wkb_rings(wkb)


def concat_spills(parts: list[Spill], offsets: np.ndarray, path: Path) -> Spill:
    """One spill of several (the files of one year, in order): rows numbered on by ``offsets``
    (each part's first row), codes and bounds joined; the parts' files are removed."""
    writer = SpillWriter(path)
    for part, off in zip(parts, offsets):
        with pa.OSFile(str(part.path)) as f:
            reader = pa.ipc.open_file(f)
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                rows = batch.column("row").to_numpy() + int(off)
                columns = {"row": pa.array(rows, type=pa.int64())}
                columns.update({n: batch.column(n) for n in batch.schema.names if n != "row"})
                writer._writer.write_table(pa.table(columns))
                writer.n += batch.num_rows
        Path(part.path).unlink(missing_ok=True)
    writer.close()
    codes = np.concatenate([p.codes for p in parts]) if parts else np.zeros(0, np.int16)
    bounds = np.concatenate([p.bounds for p in parts]) if parts else np.zeros((0, 4))
    return Spill(path, codes, parts[0].crs if parts else None, bounds)


def wkb_rings(wkb: pa.Array) -> Rings | None:
    """:meth:`Rings.from_wkb` of an Arrow binary column (None if a value is null)."""
    if (
        not len(wkb)
        or wkb.null_count
        or not (pa.types.is_binary(wkb.type) or pa.types.is_large_binary(wkb.type))
    ):
        return None
    _, offsets, data = wkb.buffers()
    width = np.int64 if pa.types.is_large_binary(wkb.type) else np.int32
    offsets = np.frombuffer(offsets, dtype=width)[wkb.offset : wkb.offset + len(wkb) + 1]
    return Rings.from_wkb(np.frombuffer(data, dtype=np.uint8), offsets)


def give_back_memory() -> None:
    """Return freed heap to the operating system. glibc keeps memory freed by many small objects
    (GEOS geometries, from several threads) in its arenas, so a process that frees a tile still
    shows it as resident (~600 MB after streaming the national land use, measured); malloc_trim
    releases it. A no-op where there is no glibc."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
