"""Raster land use given as several files for one year (``path:`` a list or a glob: ESA
WorldCover 3°×3° tiles, CLCD per-province tiles, GlobeLand30 tiles of one UTM zone), and two
raster years on one pixel lattice with different extents: both are handed to the zonal stage as
one grid per year, never resampled.

How
    Every file is opened and checked (:func:`~pipeline.ingest.grids.open_grid`). The files of a
    year must share one CRS and one pixel lattice: the same pixel size, no rotation, and origins
    a whole number of pixels apart (to 1e-6 px). They are then joined by a GDAL VRT written by
    hand (a few lines of XML: one ``SimpleSource`` per file, placed at its whole-pixel offset) in
    a run-private temporary folder, removed when the process ends — never beside the user's
    files. A VRT, not a mosaic GeoTIFF: nothing is copied (a province of 30 m pixels would be
    gigabytes), GDAL reads each file's own blocks through it, and a ``SimpleSource`` at a whole
    pixel offset reads pixels as they are (no resampling). rasterio offers no VRT builder for
    this (its ``WarpedVRT`` warps, i.e. resamples); ``gdalbuildvrt`` is not a Python
    dependency. With a dask.distributed scheduler on other machines this folder would not be
    shared: join the tiles there with ``gdalbuildvrt`` and name the .vrt.

Overlapping tiles
    Where two files of a year overlap, their overlapping pixels are read and must be equal
    (value for value); the VRT then shows each pixel once (the later file's copy, the same
    value), so no pixel counts twice. Differing pixels stop the run, naming both files, the
    overlap window and how many pixels differ.

Types and nodata
    The files of a year must share one pixel type and one nodata value (or none): a VRT band has
    one of each, and reading one file's nodata value as a class of another would be wrong.
    Different ones are refused, with the files grouped by type/nodata and the fix
    (``gdal_translate -ot`` / ``gdal_edit.py -a_nodata``).

Two years on one lattice, different extents
    The transfer matrix needs both years on one grid. When both years (mosaics or single files)
    lie on one lattice but cover different extents, both are put on the union of their extents
    (a VRT each); cells outside a year's files are its nodata value (the files' nodata; 0 when
    they have none and 0 is no class of the legend; else the legend's first nodata code — with
    neither, the run stops and asks for a nodata value). Years on different lattices are left
    as they are and the zonal stage refuses them, as before.

Not supported (refused with the files grouped by CRS and lattice, and the fix): files of one
year in different CRSs or off one lattice. Warp them onto one grid first
(``gdalwarp -t_srs … -tr … -tap -r near``, which resamples: that is then the user's choice).
"""

from __future__ import annotations

import atexit
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from pipeline.errors import InputError, Problem
from pipeline.ingest.grids import Grid, open_grid
from pipeline.settings.legends import Legend

__all__ = ["Mosaic", "one_grid_per_year"]

log = logging.getLogger(__name__)

#: origins within this fraction of a pixel of a whole pixel offset are on one lattice
LATTICE_TOLERANCE_PX = 1e-6
#: numpy pixel type → GDAL's name in a VRT
GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "uint64": "UInt64",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
}


@dataclass(frozen=True)
class Mosaic:
    """One year's grid: the file the zonal stage reads (a file of the user's, or a VRT), and
    what was done, for the run's provenance."""

    path: Path
    note: str | None = None


def one_grid_per_year(
    files: dict[int, tuple[Path, ...]],
    crs: dict[int, str | None],
    legends: dict[int, Legend],
    labels: dict[int, str],
) -> dict[int, Mosaic]:
    """Year → the one grid to read. ``files``: year → its raster files (one or more); ``crs``:
    year → the catalog's ``crs:`` (overrides the files'); ``labels``: year → how messages name
    the year's entry. A year of one file on the other year's grid is returned as it is."""
    grids: dict[int, list[Grid]] = {}
    problems: list[Problem] = []
    for y, paths in files.items():
        try:
            grids[y] = [open_grid(y, p, crs.get(y)) for p in paths]
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    for y, gs in grids.items():
        if len(gs) > 1:
            problems += _one_lattice(gs, labels[y]) or _one_type(gs, labels[y])
    if problems:
        raise InputError(problems)
    for y, gs in grids.items():
        if len(gs) > 1:
            problems += _overlaps_agree(gs, labels[y])
    if problems:
        raise InputError(problems)
    extents = {y: _extent(gs) for y, gs in grids.items()}
    years = sorted(grids)
    union = None
    if len(years) == 2 and _on_one_lattice(grids[years[0]][0], grids[years[1]][0]):
        a, b = extents[years[0]], extents[years[1]]
        if a != b:
            union = _union(a, b)
    out: dict[int, Mosaic] = {}
    folder: Path | None = None
    for y in years:
        gs = grids[y]
        extent = union or extents[y]
        if len(gs) == 1 and extent == extents[y]:
            out[y] = Mosaic(gs[0].path)
            continue
        fill = _fill_value(gs, legends[y], labels[y], needed=_has_gaps(gs, extent))
        folder = folder or _private_folder()
        vrt = folder / f"landuse-{y}.vrt"
        vrt.write_text(_vrt_xml(gs, extent, fill), encoding="utf-8")
        what = f"{len(gs)} raster files joined" if len(gs) > 1 else "the raster"
        where = " on the union of both years' extents" if union else ""
        out[y] = Mosaic(
            vrt,
            f"{labels[y]}: {what} on one pixel lattice{where}, without resampling "
            f"(a VRT of {extent.width} × {extent.height} px; overlapping pixels checked equal)",
        )
        log.info("%s: %s", labels[y], out[y].note)
    return out


# --- lattice, type, overlaps ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Extent:
    """A window of whole pixels on a lattice: its transform and size."""

    transform: Affine
    width: int
    height: int


def _on_one_lattice(a: Grid, b: Grid) -> bool:
    ta, tb = a.transform, b.transform
    if ta.b or ta.d or tb.b or tb.d:
        return False
    if not (a.crs == b.crs or a.crs.equals(b.crs, ignore_axis_order=True)):
        return False
    size = max(abs(ta.a), abs(ta.e))
    if abs(ta.a - tb.a) > 1e-9 * size or abs(ta.e - tb.e) > 1e-9 * size:
        return False
    dx, dy = (tb.c - ta.c) / ta.a, (tb.f - ta.f) / ta.e
    return (
        abs(dx - round(dx)) <= LATTICE_TOLERANCE_PX and abs(dy - round(dy)) <= LATTICE_TOLERANCE_PX
    )


def _describe_lattice(g: Grid) -> str:
    t = g.transform
    if t.b or t.d:
        return f"{g.crs.name}, rotated transform {tuple(t)[:6]}"
    return f"{g.crs.name}, pixels {t.a:g} × {-t.e:g}, origin ({t.c:.10g}, {t.f:.10g})"


def _one_lattice(grids: list[Grid], label: str) -> list[Problem]:
    """Group the files by lattice; more than one group is a problem naming them."""
    groups: list[list[Grid]] = []
    for g in grids:
        for group in groups:
            if _on_one_lattice(group[0], g):
                group.append(g)
                break
        else:
            groups.append([g])
    if len(groups) == 1:
        return []
    parts = "; ".join(
        f"[{_describe_lattice(gr[0])}]: " + ", ".join(x.path.name for x in gr) for gr in groups
    )
    return [
        Problem(
            label,
            f"its {len(grids)} raster files lie on {len(groups)} different grids (CRS, pixel "
            f"size, or origins not a whole number of pixels apart): {parts}. The files of a "
            "year are joined without resampling, so they must share one CRS and one pixel "
            "lattice. Warp them onto one grid first (gdalwarp -t_srs CRS -tr X Y -tap -r near "
            "tile.tif out.tif — that resamples), or give the year as one file.",
        )
    ]


def _one_type(grids: list[Grid], label: str) -> list[Problem]:
    kinds: dict[tuple[str, str], list[str]] = {}
    for g in grids:
        nd = "none" if g.nodata is None else "nan" if math.isnan(g.nodata) else f"{g.nodata:g}"
        kinds.setdefault((g.dtype, nd), []).append(g.path.name)
    if len(kinds) == 1:
        return []
    parts = "; ".join(f"{t} nodata {nd}: " + ", ".join(names) for (t, nd), names in kinds.items())
    return [
        Problem(
            label,
            f"its raster files differ in pixel type or nodata value ({parts}); one grid has one "
            "of each. Convert them to one (gdal_translate -ot TYPE, gdal_edit.py -a_nodata "
            "VALUE).",
        )
    ]


def _offset(base: Affine, g: Grid) -> tuple[int, int]:
    """(row, column) of g's first pixel on base's lattice."""
    t = g.transform
    return round((t.f - base.f) / base.e), round((t.c - base.c) / base.a)


def _extent(grids: list[Grid]) -> _Extent:
    base = grids[0].transform
    offs = [_offset(base, g) for g in grids]
    r0 = min(r for r, _ in offs)
    c0 = min(c for _, c in offs)
    r1 = max(r + g.height for (r, _), g in zip(offs, grids))
    c1 = max(c + g.width for (_, c), g in zip(offs, grids))
    return _Extent(base @ Affine.translation(c0, r0), c1 - c0, r1 - r0)


def _union(a: _Extent, b: _Extent) -> _Extent:
    ta, tb = a.transform, b.transform
    rb, cb = round((tb.f - ta.f) / ta.e), round((tb.c - ta.c) / ta.a)
    r0, c0 = min(0, rb), min(0, cb)
    r1, c1 = max(a.height, rb + b.height), max(a.width, cb + b.width)
    return _Extent(ta @ Affine.translation(c0, r0), c1 - c0, r1 - r0)


def _overlaps_agree(grids: list[Grid], label: str) -> list[Problem]:
    """Read the overlapping pixels of every pair of files; they must be equal."""
    base = grids[0].transform
    boxes = []
    for g in grids:
        r, c = _offset(base, g)
        boxes.append((r, c, r + g.height, c + g.width))
    problems = []
    for i in range(len(grids)):
        for j in range(i + 1, len(grids)):
            a, b = boxes[i], boxes[j]
            r0, c0 = max(a[0], b[0]), max(a[1], b[1])
            r1, c1 = min(a[2], b[2]), min(a[3], b[3])
            if r1 <= r0 or c1 <= c0:
                continue
            with rasterio.open(grids[i].path) as sa, rasterio.open(grids[j].path) as sb:
                pa = sa.read(1, window=Window(c0 - a[1], r0 - a[0], c1 - c0, r1 - r0))
                pb = sb.read(1, window=Window(c0 - b[1], r0 - b[0], c1 - c0, r1 - r0))
            same = (pa == pb) | (np.isnan(pa) & np.isnan(pb) if pa.dtype.kind == "f" else False)
            differ = int((~same).sum())
            if differ:
                x0, y0 = base @ (c0, r0)
                x1, y1 = base @ (c1, r1)
                problems.append(
                    Problem(
                        label,
                        f"files {grids[i].path.name} and {grids[j].path.name} overlap on "
                        f"{r1 - r0} × {c1 - c0} px (x {min(x0, x1):.10g} to {max(x0, x1):.10g}, "
                        f"y {min(y0, y1):.10g} to {max(y0, y1):.10g}) and {differ:,} of those "
                        "pixels differ; a pixel must have one class. Clip the tiles so that "
                        "they do not overlap, or make them agree.",
                    )
                )
    return problems


# --- the VRT -------------------------------------------------------------------------------------


def _has_gaps(grids: list[Grid], extent: _Extent) -> bool:
    """Whether some pixel of ``extent`` lies in no file (then it needs a fill value): the files'
    boxes on a grid compressed to their edges (a few cells per file, not one per pixel)."""
    boxes = []
    for g in grids:
        r, c = _offset(extent.transform, g)
        boxes.append((r, c, r + g.height, c + g.width))
    rows = sorted({0, extent.height, *(b[0] for b in boxes), *(b[2] for b in boxes)})
    cols = sorted({0, extent.width, *(b[1] for b in boxes), *(b[3] for b in boxes)})
    covered = np.zeros((len(rows) - 1, len(cols) - 1), dtype=bool)
    for r0, c0, r1, c1 in boxes:
        covered[rows.index(r0) : rows.index(r1), cols.index(c0) : cols.index(c1)] = True
    return not covered.all()


def _fill_value(grids: list[Grid], legend: Legend, label: str, needed: bool) -> float | None:
    """The VRT's nodata value: the files' own; else 0 if 0 is no class; else the legend's
    first nodata code; else (when some pixel of the extent lies in no file) an error."""
    nodata = grids[0].nodata
    if nodata is not None or not needed:
        return nodata
    if 0 not in legend.classes:
        return 0.0
    codes = sorted(c for c in legend.nodata if isinstance(c, int))
    if codes:
        return float(codes[0])
    raise InputError(
        f"its raster files carry no nodata value and {legend.label()} has class 0, so the "
        "cells between or beside the files (which have no class) cannot be marked. Set a "
        "nodata value on the files (gdal_edit.py -a_nodata VALUE) or list one under the "
        "legend's 'nodata:'.",
        where=label,
    )


def _vrt_xml(grids: list[Grid], extent: _Extent, fill: float | None) -> str:
    g0 = grids[0]
    t = extent.transform
    kind = GDAL_TYPES.get(g0.dtype)
    if kind is None:
        raise InputError(f"pixel type {g0.dtype} cannot be joined", where=str(g0.path))
    lines = [
        f'<VRTDataset rasterXSize="{extent.width}" rasterYSize="{extent.height}">',
        f"  <SRS>{escape(g0.crs.to_wkt())}</SRS>",
        f"  <GeoTransform>{t.c!r}, {t.a!r}, 0.0, {t.f!r}, 0.0, {t.e!r}</GeoTransform>",
        f'  <VRTRasterBand dataType="{kind}" band="1">',
    ]
    if fill is not None:
        lines.append(f"    <NoDataValue>{fill!r}</NoDataValue>")
    for g in grids:
        r, c = _offset(t, g)
        bh, bw = g.tile
        lines += [
            "    <SimpleSource>",
            f'      <SourceFilename relativeToVRT="0">{escape(str(g.path.resolve()))}'
            "</SourceFilename>",
            "      <SourceBand>1</SourceBand>",
            f'      <SourceProperties RasterXSize="{g.width}" RasterYSize="{g.height}" '
            f'DataType="{kind}" BlockXSize="{bw}" BlockYSize="{bh}"/>',
            f'      <SrcRect xOff="0" yOff="0" xSize="{g.width}" ySize="{g.height}"/>',
            f'      <DstRect xOff="{c}" yOff="{r}" xSize="{g.width}" ySize="{g.height}"/>',
            "    </SimpleSource>",
        ]
    lines += ["  </VRTRasterBand>", "</VRTDataset>", ""]
    return "\n".join(lines)


def _private_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ecovoucher-mosaic-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
