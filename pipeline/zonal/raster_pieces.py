"""Polygons of raster land use: the pieces the raster transfer matrix and class areas measure —
connected pixels of one county and one (from, to) pair (the change map ``landuse_change``) or one
class of one year (``landuse_<year>``) — each with the matrix's own measure of its pixels, and
the change map as a GeoTIFF on the land-use grid (``landuse_change.tif``).

One builder for both, :func:`raster_pieces`, called by
:func:`~pipeline.zonal.raster.raster_zonal_areas` with what it already prepared (county grid,
lookup tables, cell areas, the counties' rings in pixel coordinates). Each pixel gets a *key*
from its class slots through a pair table (``pairs[slot_a, slot_b]``, 0 = no piece): for the
change map the pairs whose classes differ (both years a class: area covered in one year only —
code 0 in ``transitions`` — has no piece, as on the vector path), for a year's land use the
diagonal of that year's classes. The grid is read in the blocks of the histogram pass (one
:class:`~pipeline.runtime.engine.Engine` task per band of blocks); in each block:

- pixels counted whole for a county (``border: center``: every pixel of the county grid;
  ``exact``: those no county boundary cuts) are labelled into 4-connected components of one
  (county, key) by a union-find numba kernel (:func:`_components`; checked against
  ``rasterio.features.shapes``, which gives one polygon per such component), whose areas are the
  sums of their cells' areas (:class:`~pipeline.geom.cell_area.CellAreas`: one value on an
  equal-area grid, per row on lon/lat, per cell otherwise) and whose outlines come from
  ``rasterio.features.shapes``;
- with ``border: exact``, pixels a county boundary cuts are pieces of their own, per county and
  key: their components among the pixels that county covers partly, measured by the covered
  fractions the histogram uses (fraction × cell area), clipped to the county below.

**Pieces are cut at block edges** (``block_size``, 2048 px by default): a patch crossing a block
edge is two or more pieces, each with its own area; sums are unaffected.

The outlines are taken into the run's equal-area CRS and clipped to their county there
(``shapely.intersection`` for the pieces not wholly within it), so every polygon lies inside its
county; ``area_ha`` stays the matrix's measure of the pixels (a centre-rule pixel on a boundary
counts whole for one county, as in ``transitions``), so per county Σ area_ha equals the matrix's
cells. The change GeoTIFF: ``from_code · 1000 + to_code`` (the legends' codes) where a pixel
changed and counts for a county (its centre in one, or with exact borders any covered part),
0 elsewhere; uint32, nodata 0, tiled 512 × 512, ZSTD (DEFLATE where GDAL lacks it).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numba
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import shapes
from rasterio.windows import Window

from pipeline.errors import InputError
from pipeline.geom.cell_area import CellAreas
from pipeline.geom.pixel_coverage import pixel_coverage
from pipeline.ingest.pixels import small_codes
from pipeline.runtime.engine import Engine
from pipeline.zonal.raster_kernels import EPS

__all__ = [
    "CHANGE_FACTOR",
    "PieceSource",
    "change_pairs",
    "change_values",
    "class_pairs",
    "clipped_layer",
    "raster_pieces",
]

#: the change GeoTIFF's value is from_code · CHANGE_FACTOR + to_code
CHANGE_FACTOR = 1000


@dataclass(frozen=True)
class PieceSource:
    """What the histogram pass already prepared, for :func:`raster_pieces`: the rasters (path,
    nodata), their lookup tables raw value → slot (table, offset; see
    :mod:`pipeline.ingest.pixels`), the county grid's path, the counties'
    rings in pixel coordinates (exact borders; objects with ``zone, xy, starts, ends, bbox``),
    the number of slots, the cell areas, and the windows of each band."""

    sources: tuple[tuple[str, float | None], ...]
    luts: tuple[tuple[np.ndarray, int], ...]
    zones: str
    rings: list
    n_slots: int
    cells: CellAreas
    bands: list[list[tuple[int, int, int, int]]]


def change_pairs(codes_a: np.ndarray, codes_b: np.ndarray, n_slots: int) -> np.ndarray:
    """The pair table of the change map: key sa·S + sb + 1 where both slots are classes (not
    no data, not unknown) and their zonal numbers differ, else 0."""
    S = n_slots
    pairs = np.zeros((S, S), dtype=np.int64)
    for sa in range(1, len(codes_a)):
        for sb in range(1, len(codes_b)):
            if codes_a[sa] != codes_b[sb]:
                pairs[sa, sb] = sa * S + sb + 1
    return pairs


def class_pairs(codes: np.ndarray, n_slots: int) -> np.ndarray:
    """The pair table of one year's land use (both slots from the same raster): key s + 1 on the
    diagonal of the classes, else 0."""
    pairs = np.zeros((n_slots, n_slots), dtype=np.int64)
    for s in range(1, len(codes)):
        pairs[s, s] = s + 1
    return pairs


def change_values(
    codes_a: list[int], codes_b: list[int], pairs: np.ndarray, where: str
) -> np.ndarray:
    """The GeoTIFF value of each pair (uint32, 0 where no piece): from · 1000 + to in the years'
    legend codes (``codes_a``/``codes_b``: the legend code of each slot). A code that does not
    fit (to ≥ 1000, from · 1000 + to ≥ 2³², or negative) is refused, naming the codes."""
    values = np.zeros(pairs.shape, dtype=np.uint32)
    bad = set()
    for sa, sb in zip(*np.nonzero(pairs)):
        fa, tb = int(codes_a[sa]), int(codes_b[sb])
        if tb >= CHANGE_FACTOR or fa < 0 or tb < 0 or fa * CHANGE_FACTOR + tb >= 2**32:
            bad.add((fa, tb))
            continue
        values[sa, sb] = fa * CHANGE_FACTOR + tb
    if bad:
        raise InputError(
            f"landuse_change.tif holds from_code · 1000 + to_code, so every class code must be "
            f"a whole number 0–999; these changes do not fit: {sorted(bad)[:10]}. Turn off "
            "outputs.landuse_change for these legends (the transfer matrix is unaffected).",
            where=where,
        )
    return values


def raster_pieces(
    src: PieceSource,
    pairs: np.ndarray,
    engine: Engine,
    values: np.ndarray | None = None,
    tif: Path | None = None,
    profile: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """The pieces of the key image ``pairs[slot_a, slot_b]`` (see the module text): county
    position (0-based), key, area in m² (the matrix's measure) and the outline (shapely, in the
    grid's CRS, not yet clipped), in a fixed order (bands, blocks, pieces). With ``values`` and
    ``tif``: also the GeoTIFF of ``values[slot_a, slot_b]`` on the grid (``profile``: its
    rasterio profile: crs, transform, width, height)."""
    tasks = [(src, pairs, values if tif is not None else None, band) for band in src.bands]
    parts = engine.map(_pieces_task, tasks, desc="raster pieces")
    if tif is not None:
        _write_tif(tif, profile or {}, [b for p in parts for b in p["blocks"]])
    pos = np.concatenate([p["pos"] for p in parts]) if parts else np.zeros(0, np.int64)
    key = np.concatenate([p["key"] for p in parts]) if parts else np.zeros(0, np.int64)
    area = np.concatenate([p["area"] for p in parts]) if parts else np.zeros(0)
    geoms = [g for p in parts for g in shapely.from_wkb(p["wkb"])] if parts else []
    return pos, key, area, geoms


def clipped_layer(
    pos: np.ndarray,
    geoms: list,
    grid_crs,
    counties: gpd.GeoDataFrame,
    columns: dict[str, np.ndarray],
) -> gpd.GeoDataFrame:
    """The pieces as a layer in the counties' (equal-area) CRS, each clipped to its county:
    ``county_id`` then ``columns``. A piece whose outline lies wholly in its county keeps it."""
    g = gpd.GeoSeries(geoms, crs=grid_crs)
    if g.crs is not None and not g.crs.equals(counties.crs):
        g = g.to_crs(counties.crs)
    out_geoms = np.asarray(g.values, dtype=object)
    county_geoms = np.asarray(counties.geometry.values, dtype=object)[pos]
    if len(out_geoms):
        shapely.prepare(county_geoms)
        outside = ~shapely.within(out_geoms, county_geoms)
        if outside.any():
            cut = shapely.intersection(out_geoms[outside], county_geoms[outside])
            out_geoms[outside] = [_polygonal(c) for c in cut]
        shapely.destroy_prepared(county_geoms)
    ids = counties["county_id"].to_numpy()[pos] if len(pos) else np.zeros(0, dtype=object)
    return gpd.GeoDataFrame(
        {"county_id": ids, **columns},
        geometry=gpd.GeoSeries(out_geoms, crs=counties.crs).values,
        crs=counties.crs,
    )


def _polygonal(geom):  # type: ignore[no-untyped-def]
    """The polygonal part of an intersection (lines and points of a touching edge dropped)."""
    if geom is None or geom.geom_type in ("Polygon", "MultiPolygon") or geom.is_empty:
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _write_tif(path: Path, profile: dict, blocks: list[tuple]) -> None:
    base = {
        "driver": "GTiff",
        "count": 1,
        "dtype": "uint32",
        "nodata": 0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",
        **profile,
    }
    for codec in ({"compress": "zstd", "zstd_level": 1}, {"compress": "deflate", "zlevel": 1}):
        try:
            with rasterio.open(path, "w", **base, **codec) as dst:
                for r0, c0, h, w, idx, vals in blocks:
                    if not len(idx):  # nothing changed in the block: left as nodata
                        continue
                    arr = np.zeros(h * w, dtype=np.uint32)
                    arr[idx] = vals
                    dst.write(arr.reshape(h, w), 1, window=Window(c0, r0, w, h))
            return
        except rasterio.errors.RasterioError:
            path.unlink(missing_ok=True)
            if codec["compress"] == "deflate":
                raise


def _pieces_task(
    src: PieceSource,
    pairs: np.ndarray,
    values: np.ndarray | None,
    windows: list[tuple[int, int, int, int]],
) -> dict:
    """The pieces of one band of blocks (and the change GeoTIFF's non-zero pixels per block)."""
    S = src.n_slots
    out: dict[str, list] = {"pos": [], "key": [], "area": [], "wkb": []}
    blocks = []
    (lut_a, off_a), (lut_b, off_b) = src.luts[0], src.luts[-1]
    no_values = np.zeros((1, 1), dtype=np.uint32)
    with contextlib.ExitStack() as stack:
        zsrc = stack.enter_context(rasterio.open(src.zones))
        srcs = [stack.enter_context(rasterio.open(p)) for p, _ in src.sources]
        for r0, c0, h, w in windows:
            win = Window(c0, r0, w, h)
            z = zsrc.read(1, window=win)
            raws = []
            for s, (_, nodata) in zip(srcs, src.sources):
                raw = s.read(1, window=win)
                if raw.dtype not in (np.uint8, np.int8, np.uint16, np.int16):
                    raw = small_codes(raw, nodata)
                raws.append(raw)
            a, b = raws[0], raws[-1]
            cell = src.cells.block(r0, c0, h, w)
            transform = rasterio.windows.transform(win, zsrc.transform)
            partial = np.zeros((h, w), dtype=np.uint8)
            covered = []  # (county position, coverage, rows, columns) of the cut pixels
            for g in src.rings:
                gr0, gc0 = max(g.bbox[0], r0), max(g.bbox[1], c0)
                gr1, gc1 = min(g.bbox[2], r0 + h), min(g.bbox[3], c0 + w)
                if gr1 <= gr0 or gc1 <= gc0:
                    continue
                cov = pixel_coverage(g.xy, g.starts, g.ends, float(gc0), float(gr0),
                                     gr1 - gr0, gc1 - gc0)  # fmt: skip
                part = (cov > EPS) & (cov < 1.0 - EPS)
                if part.any():
                    rs, cs = slice(gr0 - r0, gr1 - r0), slice(gc0 - c0, gc1 - c0)
                    partial[rs, cs] |= part
                    covered.append((g.zone - 1, np.where(part, cov, 0.0), rs, cs))
            key = np.empty((h, w) if covered else (1, 1), dtype=np.int64)
            whole = np.empty((h, w), dtype=np.int64)
            tif = np.empty((h, w) if values is not None else (1, 1), dtype=np.uint32)
            _block_keys(z, a, lut_a, off_a, b, lut_b, off_b, pairs,
                        no_values if values is None else values, values is not None, partial,
                        key, bool(covered), whole, tif)  # fmt: skip
            _add(whole, cell, transform, out, S)  # pixels counted whole for one county
            for zpos, cov, rs, cs in covered:  # cut pixels, by their covered fraction
                bk = np.where(cov > 0.0, key[rs, cs], 0)
                if not bk.any():
                    continue
                bk = np.where(bk > 0, (zpos + 1) * (S * S + 1) + bk, 0)
                sub = rasterio.windows.transform(
                    Window(c0 + cs.start, r0 + rs.start, cs.stop - cs.start, rs.stop - rs.start),
                    zsrc.transform,
                )
                _add(bk, cov * cell[rs, cs], sub, out, S)
            if values is not None:
                idx = np.flatnonzero(tif)
                blocks.append((r0, c0, h, w, idx, tif.ravel()[idx]))
    cat = np.concatenate
    return {
        "pos": cat(out["pos"]) if out["pos"] else np.zeros(0, np.int64),
        "key": cat(out["key"]) if out["key"] else np.zeros(0, np.int64),
        "area": cat(out["area"]) if out["area"] else np.zeros(0),
        "wkb": cat(out["wkb"]) if out["wkb"] else np.zeros(0, dtype=object),
        "blocks": blocks,
    }


def _add(key: np.ndarray, weight: np.ndarray, transform, out: dict, n_slots: int) -> None:  # type: ignore[no-untyped-def]
    """Append the components of ``key`` (county · (S² + 1) + pair key, 0 = none) to ``out``:
    county position, pair key, Σ weight (m²: the cells' areas or covered parts) and outline as
    WKB."""
    if not key.any():
        return
    labels, keys = _components(key)
    n = len(keys) - 1
    area = _label_sums(labels, np.asarray(weight, dtype=np.float64), n)
    outline = np.empty(n, dtype=object)
    rows = np.flatnonzero(labels.any(axis=1))
    cols = np.flatnonzero(labels.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # polygonize the labels' box only
    crop = labels[r0:r1, c0:c1]
    for geom, label in shapes(crop, mask=crop > 0, connectivity=4,
                              transform=transform @ Affine.translation(c0, r0)):  # fmt: skip
        outline[int(label) - 1] = _polygon(geom["coordinates"])
    if any(g is None for g in outline):  # a component without its polygon: a bug of ours
        raise RuntimeError("raster pieces: a component has no outline")
    full = keys[1:]
    out["pos"].append(full // (n_slots * n_slots + 1) - 1)
    out["key"].append(full % (n_slots * n_slots + 1))
    out["area"].append(area)
    out["wkb"].append(shapely.to_wkb(outline))


def _polygon(rings: list) -> shapely.Polygon:
    """A GeoJSON polygon's rings as a shapely polygon (rings built from arrays at once; faster
    than ``shapely.geometry.shape`` by coordinate tuples)."""
    shell = shapely.linearrings(np.asarray(rings[0], dtype=np.float64))
    if len(rings) == 1:
        return shapely.polygons(shell)
    holes = [shapely.linearrings(np.asarray(r, dtype=np.float64)) for r in rings[1:]]
    return shapely.polygons(shell, holes)


@numba.njit(nogil=True, cache=True)
def _block_keys(
    z,
    a,
    lut_a,
    off_a,
    b,
    lut_b,
    off_b,
    pairs,
    values,
    use_values,
    partial,
    key,
    use_key,
    whole,
    tif,
):  # pragma: no cover
    """Per pixel: key = pairs[slot_a, slot_b] (with ``use_key``); whole = zone · (S² + 1) + key where the pixel
    counts whole for the county of the county grid (zone > 0, not cut by a boundary), else 0;
    tif (with ``use_values``) = values[slot_a, slot_b] where the pixel counts for
    a county (zone > 0 or cut), else 0."""
    h, w = z.shape
    stride = np.int64(pairs.shape[0]) * pairs.shape[0] + 1
    for i in range(h):
        for j in range(w):
            sa = lut_a[np.int64(a[i, j]) + off_a]
            sb = lut_b[np.int64(b[i, j]) + off_b]
            k = pairs[sa, sb]
            if use_key:
                key[i, j] = k
            zz = np.int64(z[i, j])
            cut = partial[i, j] != 0
            whole[i, j] = zz * stride + k if k != 0 and zz > 0 and not cut else 0
            if use_values:
                tif[i, j] = values[sa, sb] if zz > 0 or cut else 0


@numba.njit(nogil=True, cache=True)
def _label_sums(labels, weight, n):  # pragma: no cover
    """Σ weight over the pixels of each label 1 … n (in pixel order: fixed)."""
    acc = np.zeros(n, dtype=np.float64)
    h, w = labels.shape
    for i in range(h):
        for j in range(w):
            lab = labels[i, j]
            if lab:
                acc[lab - 1] += weight[i, j]
    return acc


@numba.njit(nogil=True, cache=True)
def _components(key):  # pragma: no cover
    """4-connected components of equal non-zero values: labels 1 … n (int32, in the order of
    their first pixel, row by row) and each label's value (``keys[0]`` = 0). Two passes with a
    union-find whose parents are never larger than their children."""
    h, w = key.shape
    lab = np.zeros((h, w), dtype=np.int32)
    parent = np.zeros(h * w + 1, dtype=np.int32)
    n = 0
    for i in range(h):
        for j in range(w):
            k = key[i, j]
            if k == 0:
                continue
            up = lab[i - 1, j] if i > 0 and key[i - 1, j] == k else 0
            left = lab[i, j - 1] if j > 0 and key[i, j - 1] == k else 0
            if up == 0 and left == 0:
                n += 1
                parent[n] = n
                lab[i, j] = n
            elif up == 0 or left == 0:
                lab[i, j] = up + left
            else:
                ru = up
                while parent[ru] != ru:
                    ru = parent[ru]
                rl = left
                while parent[rl] != rl:
                    rl = parent[rl]
                lo, hi = min(ru, rl), max(ru, rl)
                parent[hi] = lo
                lab[i, j] = lo
    remap = np.zeros(n + 1, dtype=np.int32)
    m = 0
    for label in range(1, n + 1):
        root = label
        while parent[root] != root:
            root = parent[root]
        if root == label:
            m += 1
            remap[label] = m
        else:
            remap[label] = remap[root]
    keys = np.zeros(m + 1, dtype=key.dtype)
    for i in range(h):
        for j in range(w):
            if lab[i, j]:
                lab[i, j] = remap[lab[i, j]]
                keys[lab[i, j]] = key[i, j]
    return lab, keys
