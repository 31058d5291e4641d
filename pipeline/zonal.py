"""Stage 3 — zonal statistics: exact area of every land-use class in every county.

One public function, :func:`zonal_areas`. Counties are split into spatially compact partitions;
each partition is one task (run by :class:`~pipeline.engine.Engine`) that gets its counties and the
land-use polygons whose bounding boxes touch them. Inside a task an STRtree finds the intersecting
(county, polygon) pairs; a polygon that lies wholly inside its county (``contains_properly``) counts
with its own area, and only polygons crossing a county boundary are intersected.

Every county is computed whole inside one task, and the contributions are summed in an order fixed
by their values, so the result is bit-for-bit the same whatever the engine, the worker count or the
row order of the input.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.engine import Engine

log = logging.getLogger(__name__)

#: A county boundary with more vertices than this is cut into grid pieces before intersecting.
MAX_PIECE_VERTICES = 256


def zonal_areas(
    counties: gpd.GeoDataFrame,
    landuse: dict[int, gpd.GeoDataFrame],
    engine: Engine,
    partitions: int | None = None,
) -> pd.DataFrame:
    """Per-county, per-class areas for every year.

    ``counties``: ``county_id`` and polygons; ``landuse``: year → ``class_code`` and polygons, all in
    one equal-area CRS (metres). Returns ``county_id, year, class_code, area_ha``, one row per
    county, year and class present, sorted.
    """
    n_parts = partitions or max(1, min(len(counties), 4 * engine.n_workers))
    groups = _partition(counties, n_parts)
    tasks = []
    for year, lu in sorted(landuse.items()):
        lu_geoms = np.asarray(lu.geometry.values)
        lu_codes = lu["class_code"].to_numpy()
        tree = shapely.STRtree(lu_geoms)
        for positions in groups:
            # Each task gets its own copy of its counties: it prepares them, and GEOS prepared
            # geometries build their indexes lazily, so sharing one between threads crashes.
            c_geoms = shapely.from_wkb(shapely.to_wkb(counties.geometry.values[positions]))
            # bounding-box candidates only: the exact predicates run inside the task
            cand = np.unique(tree.query(c_geoms)[1])
            tasks.append((year, positions, c_geoms, lu_geoms[cand], lu_codes[cand]))
    parts = engine.map(_areas_of_partition, tasks, desc="zonal areas")
    return _sum_parts(parts, counties["county_id"].to_numpy())


def _partition(counties: gpd.GeoDataFrame, n_parts: int) -> list[np.ndarray]:
    """Split county positions into ``n_parts`` spatially compact groups (Hilbert order)."""
    order = np.argsort(counties.geometry.hilbert_distance().to_numpy(), kind="stable")
    return [g for g in np.array_split(order, n_parts) if len(g)]


def _areas_of_partition(
    year: int,
    positions: np.ndarray,
    county_geoms: np.ndarray,
    lu_geoms: np.ndarray,
    lu_codes: np.ndarray,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(year, county positions, class codes, areas in m²) for every (county, polygon) overlap.

    1. An STRtree over the land use gives the (county, polygon) pairs that intersect; the county
       polygons are prepared, so both predicates are fast even for counties of 10⁴ vertices.
    2. A polygon with ``contains_properly`` counts with its own area: no geometry is built.
    3. Only polygons crossing a county boundary are intersected, and with the county's grid pieces
       (:func:`_pieces`) that overlap them, not with the whole county, so each intersection costs
       in proportion to the polygon and a piece of at most MAX_PIECE_VERTICES vertices.
    """
    shapely.prepare(county_geoms)
    tree = shapely.STRtree(lu_geoms)
    c_idx, l_idx = tree.query(county_geoms, predicate="intersects")
    inside = shapely.contains_properly(county_geoms[c_idx], lu_geoms[l_idx])
    whole = (c_idx[inside], l_idx[inside], shapely.area(lu_geoms[l_idx[inside]]))

    cross_c, cross_l = c_idx[~inside], l_idx[~inside]
    pieces, owner = _pieces(county_geoms[np.unique(cross_c)], np.unique(cross_c))
    pair, piece = shapely.STRtree(pieces).query(lu_geoms[cross_l])  # bounding boxes only
    own = owner[piece] == cross_c[pair]  # a piece of this pair's own county
    pair, piece = pair[own], piece[own]
    cut_area = shapely.area(shapely.intersection(pieces[piece], lu_geoms[cross_l[pair]]))
    c_all = np.concatenate([whole[0], cross_c[pair]])
    l_all = np.concatenate([whole[1], cross_l[pair]])
    area = np.concatenate([whole[2], cut_area])
    return year, positions[c_all], lu_codes[l_all], area


def _pieces(county_geoms: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut large county polygons into grid pieces of at most ~MAX_PIECE_VERTICES vertices.

    Intersecting a small land-use polygon with a county costs time in proportion to the county's
    vertex count; with pieces it is bounded. The pieces of a county tile it exactly (each is the
    county intersected with one grid cell), so areas summed over pieces are the county's areas.
    Returns the pieces and, for each, the id (from ``ids``) of its county.
    """
    pieces, owner = [], []
    for i, geom in zip(ids, county_geoms):
        for piece in _subdivide(geom):
            pieces.append(piece)
            owner.append(i)
    return np.array(pieces, dtype=object), np.array(owner, dtype=np.int64)


def _subdivide(geom: shapely.Geometry) -> list[shapely.Geometry]:
    if shapely.get_num_coordinates(geom) <= MAX_PIECE_VERTICES:
        return [geom]
    xmin, ymin, xmax, ymax = geom.bounds
    if xmax - xmin >= ymax - ymin:
        mid = (xmin + xmax) / 2
        halves = [(xmin, ymin, mid, ymax), (mid, ymin, xmax, ymax)]
    else:
        mid = (ymin + ymax) / 2
        halves = [(xmin, ymin, xmax, mid), (xmin, mid, xmax, ymax)]
    out = []
    for box in halves:
        part = shapely.intersection(geom, shapely.box(*box))
        if not part.is_empty and part.area > 0:
            out.extend(_subdivide(_polygons_only(part)))
    return out


def _polygons_only(geom: shapely.Geometry) -> shapely.Geometry:
    if shapely.get_type_id(geom) == 7:  # a collection: keep its polygons
        parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
        return shapely.multipolygons([q for p in parts for q in shapely.get_parts(p)])
    return geom


def _sum_parts(parts: list[tuple], county_ids: np.ndarray) -> pd.DataFrame:
    """Sum the pair areas per (county, year, class) in an order fixed by the values themselves."""
    if not parts:
        return pd.DataFrame(columns=["county_id", "year", "class_code", "area_ha"])
    year = np.concatenate([np.full(len(p[1]), p[0], dtype=np.int64) for p in parts])
    pos = np.concatenate([p[1] for p in parts]).astype(np.int64)
    code = np.concatenate([p[2] for p in parts]).astype(np.int64)
    area = np.concatenate([p[3] for p in parts])
    keep = area > 0
    year, pos, code, area = year[keep], pos[keep], code[keep], area[keep]
    order = np.lexsort((area, code, year, pos))
    year, pos, code, area = year[order], pos[order], code[order], area[order]
    new = np.ones(len(area), dtype=bool)
    new[1:] = (pos[1:] != pos[:-1]) | (year[1:] != year[:-1]) | (code[1:] != code[:-1])
    starts = np.flatnonzero(new)
    sums = np.add.reduceat(area, starts) if len(area) else area
    out = pd.DataFrame(
        {
            "county_id": county_ids[pos[starts]],
            "year": year[starts],
            "class_code": code[starts],
            # 1 ha = 10,000 m²
            "area_ha": sums / 1e4,
        }
    )
    return out.sort_values(["county_id", "year", "class_code"], kind="stable").reset_index(
        drop=True
    )
