"""Pixel values → class slots: how a categorical grid's raw values are read under a year's legend
(its roll-up, its nodata codes, the file's nodata value, 0 as "no data" unless a class), shared by
the raster zonal path (:mod:`pipeline.zonal.raster`), ``ecovoucher validate`` and ingest, so
that every path reads a pixel the same way. Plain numpy lookup tables: a raw value indexes an
array of slots."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError
from pipeline.ingest.grids import Grid
from pipeline.settings.legends import Legend

__all__ = ["NO_DATA", "Slots", "class_lut", "small_codes"]

#: code used in ``transitions`` (and slot 0) for area that one year's land use does not cover
NO_DATA = 0


@dataclass(frozen=True)
class Slots:
    """The class slots of one pass over one or two years' grids: slot 0 = no data, 1 … = the
    classes of each year's legend in order, the last slot (``unknown``) = a value that is no
    class. ``codes[k][slot]``: the zonal number (:meth:`Legend.to_internal`) of year k's slot."""

    codes: tuple[np.ndarray, ...]
    n: int  # slots per axis

    @property
    def unknown(self) -> int:
        return self.n - 1

    @staticmethod
    def of(legends: list[Legend]) -> Slots:
        codes = tuple(
            np.array([NO_DATA, *leg.to_internal(sorted(leg.classes))], dtype=np.int64)
            for leg in legends
        )
        n = max(len(c) for c in codes) + 1
        if n > 255:
            raise InputError(f"{legends[0].label()} has more than 253 classes", "legend")
        return Slots(codes, n)


def class_lut(grid: Grid, legend: Legend, slots: Slots) -> tuple[np.ndarray, int]:
    """Lookup table raw value (+ offset) → class slot, and the offset. Rasters of other types than
    8/16-bit integers are converted block by block to uint16 first (see :func:`small_codes`). The
    legend's roll-up is applied; its nodata codes, the file's nodata value and 0 (unless 0 is a
    class of the legend, as MODIS water is) are "no data"."""
    UNKNOWN = slots.unknown
    kind = np.dtype(grid.dtype)
    if kind in (np.uint8, np.int8, np.uint16, np.int16):
        info = np.iinfo(kind)
        lo, size = int(info.min), int(info.max) - int(info.min) + 1
    else:
        lo, size = 0, 2**16
    values = np.arange(lo, lo + size, dtype=np.int64)
    slot = np.full(size, UNKNOWN, dtype=np.uint8)
    rolled = values.copy()
    for sub, top in legend.roll_up.items():
        rolled[values == sub] = top
    slot[values == 0] = 0  # 0 is "no data" unless it is a class (set below)
    for s, code in enumerate(sorted(legend.classes), start=1):
        slot[rolled == code] = s
    for code in legend.nodata:
        slot[values == code] = 0
    if grid.nodata is not None and np.isfinite(grid.nodata) and float(grid.nodata).is_integer():
        nd = int(grid.nodata) - lo
        if 0 <= nd < size:
            slot[nd] = 0
    if kind not in (np.uint8, np.int8, np.uint16, np.int16):
        slot[-1] = UNKNOWN  # the marker of small_codes
    return slot, -lo


def small_codes(block: np.ndarray, nodata: float | None) -> np.ndarray:
    """A block of a 32/64-bit or float raster as uint16 codes: no data → 0, anything that is not
    an integer in 0–65534 → 65535 (a value that is no class)."""
    b = block.astype(np.float64, copy=False)
    nod = np.isnan(b)
    if nodata is not None:
        nod |= b == nodata if np.isfinite(nodata) else np.isnan(b)
    ok = ~nod & (b >= 0) & (b <= 65534) & (np.floor(b) == b)
    out = np.where(ok, b, 65535.0).astype(np.uint16)
    out[nod] = 0
    return out
