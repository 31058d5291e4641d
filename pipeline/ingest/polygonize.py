"""A raster year against a vector year (RESDC 2010 polygons against CLCD 2020 pixels, 三调 against
a CLCD grid): the raster year is polygonized, and both years run through the vector path (exact
intersections, transfer matrix, change map, tiled runs).

How
    1. The grid (one file, or several joined by :mod:`pipeline.ingest.mosaic`) is read in blocks
       of :data:`BLOCK` pixels, only over the counties' extent in the grid's CRS and only the
       blocks whose box meets a county.
    2. Each pixel's raw value goes through the same lookup table as the raster path
       (:func:`pipeline.ingest.pixels.class_lut`: the legend's roll-up, its nodata codes, the
       file's nodata value, 0 as no data unless a class). No-data pixels are left out (no
       coverage, as on the raster path). A value that is no class of the legend on a pixel that
       touches a county stops the run, naming the values and their pixel counts.
    3. Pixels of one class are joined into polygons by ``rasterio.features.shapes`` (GDAL's
       polygonizer, 4-connected), per block: a region crossing a block edge becomes one polygon
       per block — the pieces are disjoint, so nothing counts twice.
    4. On a grid that is not in the run's equal-area CRS, every polygon edge is first cut at each
       pixel corner (``shapely.segmentize`` to one pixel side), then the vertices are
       reprojected (pyproj through geopandas). Each pixel's polygon area is then exactly the
       area of its four corners' quadrilateral in the equal-area CRS — what the raster path takes
       on a projected grid. On a lon/lat grid the raster path uses the exact ellipsoidal area of
       the lon/lat box; a parallel is not a straight line in the equal-area CRS, so the
       quadrilateral differs from it by the chords' sagittas: measured 4e-12 relative on 25 m
       cells at 40°N (tests/test_mixed_formats.py) — far below 1e-6, so edges are not densified
       further. On a grid in the run's equal-area CRS nothing is reprojected and a class's
       area is its pixel count × the pixel area (to float rounding, ~1e-12).

Cost: one polygon per 4-connected region per block, each with a vertex per pixel corner along
its boundary. Memory is that of the polygons (shapely objects, ~100 bytes per vertex), not of
the grid; see docs/raster.md for a measurement on the demo grid.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import CRS
from rasterio.features import geometry_mask, shapes
from rasterio.windows import Window

from pipeline.errors import InputError
from pipeline.geom.crs import same_coordinates
from pipeline.ingest.grids import open_grid
from pipeline.ingest.pixels import Slots, class_lut, small_codes
from pipeline.ingest.spill import Spill, SpillWriter
from pipeline.settings.legends import Legend

__all__ = ["polygonize_year"]

log = logging.getLogger(__name__)

#: pixels per side of a polygonized block
BLOCK = 2048
_SMALL = (np.uint8, np.int8, np.uint16, np.int16)


def polygonize_year(
    year: int,
    path: Path,
    crs_override: str | None,
    legend: Legend,
    counties: gpd.GeoDataFrame,
    label: str,
    notes: list[str],
    spill: Path | None = None,
) -> gpd.GeoDataFrame | Spill:
    """The raster year's pixels as polygons (``class_code`` as the zonal stage's numbers,
    ``row``, geometry) in the counties' (equal-area) CRS, over the counties' extent; spilled to
    ``spill`` (a file) for a tiled run. ``label``: how messages name the year."""
    grid = open_grid(year, path, crs_override)
    if legend.text:
        raise InputError(f"{legend.label()} has text codes; a raster holds numbers", label)
    target = CRS.from_user_input(counties.crs)
    on_grid = same_coordinates(target, grid.crs, counties.total_bounds)
    geoms = counties.geometry.values if on_grid else counties.to_crs(grid.crs).geometry.values
    tree = shapely.STRtree(geoms)
    slots = Slots.of([legend])
    lut, off = class_lut(grid, legend, slots)
    codes = slots.codes[0]
    inv = ~grid.transform
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    corners = [inv @ (x, y) for x in (x0, x1) for y in (y0, y1)]
    c0 = max(int(np.floor(min(c for c, _ in corners))) - 1, 0)
    r0 = max(int(np.floor(min(r for _, r in corners))) - 1, 0)
    c1 = min(int(np.ceil(max(c for c, _ in corners))) + 1, grid.width)
    r1 = min(int(np.ceil(max(r for _, r in corners))) + 1, grid.height)
    step = min(abs(grid.transform.a), abs(grid.transform.e))  # a pixel side
    parts: list[np.ndarray] = []
    part_codes: list[np.ndarray] = []
    unknown: dict[float, int] = {}
    writer = SpillWriter(spill) if spill is not None else None
    n_polys = 0
    with rasterio.open(path) as src:
        for br in range(r0, r1, BLOCK):
            for bc in range(c0, c1, BLOCK):
                win = Window(bc, br, min(BLOCK, c1 - bc), min(BLOCK, r1 - br))
                wt = rasterio.windows.transform(win, grid.transform)
                box = shapely.box(*rasterio.windows.bounds(win, grid.transform))
                near = tree.query(box)
                if not len(near):
                    continue
                raw = src.read(1, window=win)
                small = raw if raw.dtype in _SMALL else small_codes(raw, grid.nodata)
                slot = lut[small.astype(np.int64) + (off if raw.dtype in _SMALL else 0)]
                bad = slot == slots.unknown
                if bad.any():
                    inside = geometry_mask(
                        geoms[near], raw.shape, wt, all_touched=True, invert=True
                    )
                    values, n = np.unique(raw[bad & inside], return_counts=True)
                    for v, k in zip(values.tolist(), n.tolist()):
                        unknown[float(v)] = unknown.get(float(v), 0) + int(k)
                    slot = np.where(bad, 0, slot).astype(np.uint8)
                got = [(shapely.geometry.shape(g), int(v))
                       for g, v in shapes(slot, mask=slot > 0, connectivity=4, transform=wt)]  # fmt: skip
                if not got:
                    continue
                polys = np.array([g for g, _ in got], dtype=object)
                if not on_grid:  # a vertex at every pixel corner, then reprojected
                    polys = shapely.segmentize(polys, step * (1 + 1e-9))
                    polys = gpd.GeoSeries(polys, crs=grid.crs).to_crs(target).values
                if writer is not None:  # a tiled run: one block in memory at a time
                    writer.add(np.arange(n_polys, n_polys + len(polys)), np.asarray(polys))
                else:
                    parts.append(np.asarray(polys))
                part_codes.append(codes[np.array([v for _, v in got])])
                n_polys += len(polys)
    if unknown:
        if writer is not None:
            writer.close()
        found = {int(v) if float(v).is_integer() else v: n for v, n in unknown.items()}
        raise InputError(
            f"pixel values touching the counties: {legend.unknown_message(found, 'px')} 0 "  # type: ignore[arg-type]
            "(unless a class) and the file's nodata value are no data; if a value marks "
            "missing data, set it as the file's nodata (gdal_edit.py -a_nodata VALUE) or list "
            "it under the legend's 'nodata:'.",
            label,
        )
    cls = np.concatenate(part_codes).astype(np.int16) if part_codes else np.zeros(0, np.int16)
    how = "in the equal-area CRS, areas = pixel counts × pixel area"
    if not on_grid:
        how = (
            "edges cut at every pixel corner, then reprojected to the equal-area CRS (each "
            "pixel = its corners' quadrilateral)"
        )
    notes.append(
        f"{label}: raster polygonized against a vector year ({n_polys:,} polygons over the "
        f"counties' extent, {r1 - r0} × {c1 - c0} px; {how})"
    )
    if writer is not None:
        return writer.spill(cls, target)
    polys = np.concatenate(parts) if parts else np.array([], dtype=object)
    rows = np.arange(n_polys, dtype=np.int64)
    return gpd.GeoDataFrame(
        {"class_code": cls, "row": rows}, geometry=np.asarray(polys), crs=target
    )
