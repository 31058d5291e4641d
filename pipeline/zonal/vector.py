"""Stage 3 — zonal statistics: exact area of every land-use class in every county, and the
land-use transfer matrix (土地利用转移矩阵) between two years.

One public function, :func:`zonal_areas`. Counties are split into spatially compact partitions;
each partition is one task (run by :class:`~pipeline.runtime.engine.Engine`) that gets its counties and the
land-use polygons whose bounding boxes touch them, for every year. Inside a task the counties
are cut into grid pieces of a few hundred vertices (:func:`_pieces`); an STRtree finds the
(polygon, piece) pairs whose boxes meet, and a numba kernel gives each pair's area and shows the
polygons lying wholly inside a piece (most of them), which count with their own area; GEOS
intersects only polygons crossing a piece's boundary whose geometry there is needed (see
:func:`_overlay`).

Transitions: each base-year piece (a polygon, or its part inside the county) is matched with the
target-year polygons. A polygon unchanged between the years (identical geometry) is one cell of
the matrix with no geometry work; only changed polygons are intersected with the target year's
changed polygons. Area that one year covers and the other does not goes to code 0 ("no land-use
data"), so that for every county M_t − M_0 = Σ area(from→to) · (k_to − k_from) exactly.

Every county is computed whole inside one task, and the contributions are summed in an order fixed
by their values, so the result is bit-for-bit the same whatever the engine, the worker count or the
row order of the input.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.geom.identical import identical_polygons
from pipeline.geom.intersection_area import intersection_areas
from pipeline.ingest.pixels import NO_DATA
from pipeline.runtime.engine import Engine
from pipeline.runtime.resume import PartitionCache, cached

log = logging.getLogger(__name__)

#: counties per zonal task: memory per task and the grain of resuming grow with it
PARTITION_SIZE = 16
#: A county boundary with more vertices than this is cut into grid pieces before intersecting.
MAX_PIECE_VERTICES = 256
#: Transfer-matrix residuals smaller than this (hm², i.e. 0.01 m²) are rounding, not data gaps.
RESIDUAL_TOLERANCE_HA = 1e-6
#: version of what a task returns and how it computes it (resume caches of another version are
#: not reused: 3 = areas of touching boundaries and of polygons within county pieces by the
#: kernels, equal to version 2's within 1e-12 but not bit for bit)
ZONAL_FORMAT = 3


@dataclass
class ZonalResult:
    class_areas: pd.DataFrame  # county_id, year, class_code, area_ha
    transitions: pd.DataFrame | None  # county_id, from_code, to_code, area_ha
    notes: tuple[str, ...] = ()  # for the provenance: how areas were obtained (raster cells)
    #: the change map: county_id, from_code, to_code, area_ha and the piece's polygon, one row per
    #: piece of a county whose class changed (the pieces the transfer matrix measures)
    changes: gpd.GeoDataFrame | None = None
    #: each year's land use clipped to the counties (``outputs: {landuse: true}``): year →
    #: county_id, class_code, area_ha and the piece's polygon (the pieces the class areas measure)
    landuse: dict[int, gpd.GeoDataFrame] | None = None


def zonal_areas(
    counties: gpd.GeoDataFrame,
    landuse: dict[int, gpd.GeoDataFrame],
    engine: Engine,
    transitions: tuple[int, int] | None = None,
    partition_size: int = PARTITION_SIZE,
    cache: PartitionCache | None = None,
    identical: dict[int, np.ndarray] | None = None,
    trees: dict[int, shapely.STRtree] | None = None,
    change_map: bool = False,
    landuse_layers: bool = False,
) -> ZonalResult:
    """Per-county, per-class areas for every year, and optionally the transfer matrix (and with
    ``change_map`` the polygons of every changed piece, :attr:`ZonalResult.changes`; with
    ``landuse_layers`` every year's pieces, :attr:`ZonalResult.landuse`).

    ``counties``: ``county_id`` and polygons; ``landuse``: year → ``class_code`` and polygons, all in
    one equal-area CRS (metres); ``transitions``: (base, target) years for the transfer matrix.
    ``class_areas`` has one row per county, year and class present; ``transitions`` one row per
    county and (from, to) pair present; both sorted, areas in hm².

    ``partition_size`` counties make one task (memory per task grows with it); with ``cache``,
    finished partitions are saved and reused (see :mod:`pipeline.runtime.resume`). ``identical``: for each
    later year, :func:`identical_polygons` of its polygons in the first year's (computed here when
    not given); ``trees``: each year's STRtree of its polygons, if at hand.
    """
    groups = partitions(counties, partition_size)
    parts = zonal_parts(
        counties, groups, landuse, engine, transitions, cache, identical, trees,
        change_map=change_map, landuse_layers=landuse_layers,
    )  # fmt: skip
    return summed(parts, counties, transitions)


def partitions(counties: gpd.GeoDataFrame, partition_size: int) -> list[np.ndarray]:
    """The zonal tasks' counties: positions in ``counties``, ``partition_size`` to a task, each
    task's counties spatially compact (and consecutive tasks near each other)."""
    return spatial_groups(counties, max(1, -(-len(counties) // partition_size)))  # ceil(n / size)


def zonal_parts(
    counties: gpd.GeoDataFrame,
    groups: list[np.ndarray],
    landuse: dict[int, gpd.GeoDataFrame],
    engine: Engine,
    transitions: tuple[int, int] | None = None,
    cache: PartitionCache | None = None,
    identical: dict[int, np.ndarray] | None = None,
    trees: dict[int, shapely.STRtree] | None = None,
    desc: str = "zonal areas",
    change_map: bool = False,
    landuse_layers: bool = False,
) -> list[dict[str, list[tuple]]]:
    """The zonal tasks of the counties at ``groups`` (see :func:`partitions`), run on the engine:
    each task's per-county sums, for :func:`summed`. ``landuse`` must hold every polygon whose
    bounding box meets one of these counties' (it may hold others); a county's sums depend on
    those polygons alone, so tasks run tile by tile give what one run over all gives.
    ``change_map``: the tasks also return the polygons of the changed pieces."""
    ids = counties["county_id"].to_numpy()
    years = sorted(landuse)
    arrays = {
        y: (np.asarray(landuse[y].geometry.values), landuse[y]["class_code"].to_numpy())
        for y in years
    }
    first = years[0]
    identical = identical or {}
    with ThreadPoolExecutor(max_workers=max(2, engine.n_workers)) as pool:  # GEOS drops the GIL
        given = trees or {}
        missing = [y for y in years if y not in given]
        trees = {
            **given,
            **dict(zip(missing, pool.map(shapely.STRtree, [arrays[y][0] for y in missing]))),
        }
        match = {
            y: identical[y]
            if y in identical
            else identical_polygons(arrays[y][0], arrays[first][0])
            for y in years[1:]
        }

        def task(positions: np.ndarray) -> tuple:
            # shared, not copied: the tasks only read them (no prepared geometries, whose lazily
            # built indexes must not be shared between threads)
            c_geoms = np.asarray(counties.geometry.values)[positions]
            per_year, cands = {}, {}
            for y in years:
                # bounding-box candidates only (sorted): the exact predicates run in the task
                cands[y] = np.unique(trees[y].query(c_geoms)[1])
                per_year[y] = (arrays[y][0][cands[y]], arrays[y][1][cands[y]])
            # the first-year match of each later-year candidate, as an index among the task's
            # own first-year candidates (an identical polygon has the same bounding box)
            matches = {}
            for y in years[1:]:
                m = match[y][cands[y]]
                if not len(cands[first]):  # no first-year polygon here to match
                    matches[y] = np.full(len(m), -1, dtype=np.int64)
                    continue
                at = np.minimum(np.searchsorted(cands[first], m), len(cands[first]) - 1)
                matches[y] = np.where((m >= 0) & (cands[first][at] == m), at, -1)
            key = [*years, transitions, *(["changes"] if change_map else []),
                   *(["landuse"] if landuse_layers else []), *ids[positions]]  # fmt: skip
            path = cache.path("zonal", key) if cache else None
            return (path, _partition_task, positions, c_geoms, per_year, transitions, matches,
                    change_map, landuse_layers)  # fmt: skip

        tasks = list(pool.map(task, groups))
    return engine.map(cached, tasks, desc=desc)


def summed(
    parts: list[dict[str, list[tuple]]],
    counties: gpd.GeoDataFrame,
    transitions: tuple[int, int] | None = None,
) -> ZonalResult:
    """The tables of :class:`ZonalResult` from every task's sums (:func:`zonal_parts`)."""
    ids = counties["county_id"].to_numpy()
    class_areas = sum_parts([p["areas"] for p in parts], ids, ["year", "class_code"], "class_areas")
    trans = None
    if transitions:
        trans = sum_parts(
            [p["transitions"] for p in parts], ids, ["from_code", "to_code"], "transitions"
        )
        trans = add_residuals(trans, class_areas, *transitions)
    changes = None
    if any("changes" in p for p in parts):
        changes = _piece_layer(
            [t for p in parts for t in p.get("changes", [])], ids, counties.crs,
            ["from_code", "to_code"],
        )  # fmt: skip
    landuse = None
    if any("landuse" in p for p in parts):
        rows = [t for p in parts for t in p.get("landuse", [])]
        landuse = {}
        for y in sorted({t[0] for t in rows}):
            mine = [t[1:] for t in rows if t[0] == y]
            landuse[int(y)] = _piece_layer(mine, ids, counties.crs, ["class_code"])
    return ZonalResult(class_areas, trans, changes=changes, landuse=landuse)


def _piece_layer(
    parts: list[tuple], county_ids: np.ndarray, crs, codes: list[str]
) -> gpd.GeoDataFrame:
    """The tasks' pieces (county position, the code column(s) ``codes``, area m², and the
    polygons as WKB: bytes and where each ends) as one layer, sorted by county, codes, area."""
    n = len(codes)
    cols = [np.concatenate([t[i] for t in parts]) if parts else np.array([]) for i in range(n + 2)]
    geom = [
        shapely.from_wkb(t[n + 2][start:end].tobytes())
        for t in parts
        for start, end in zip(np.r_[0, t[n + 3][:-1]], t[n + 3])
    ]
    out = gpd.GeoDataFrame(
        {
            "county_id": county_ids[cols[0].astype(np.int64)],
            **{name: col.astype(np.int64) for name, col in zip(codes, cols[1 : n + 1])},
            "area_ha": cols[n + 1].astype(float) / 1e4,  # 1 ha = 10,000 m²
        },
        geometry=gpd.GeoSeries(geom, crs=crs).values,
        crs=crs,
    )
    keys = ["county_id", *codes, "area_ha"]
    order = np.lexsort([out[k].to_numpy() for k in reversed(keys)])
    return out.iloc[order].reset_index(drop=True)


def _wkb(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Polygons as WKB bytes and where each ends (the resume cache holds numbers only)."""
    wkb = shapely.to_wkb(geoms)
    ends = np.cumsum([len(b) for b in wkb], dtype=np.int64)
    return np.frombuffer(b"".join(wkb), dtype=np.uint8), ends


def spatial_groups(counties: gpd.GeoDataFrame, n_parts: int) -> list[np.ndarray]:
    """Split county positions into ``n_parts`` spatially compact groups (Hilbert order)."""
    order = np.argsort(counties.geometry.hilbert_distance().to_numpy(), kind="stable")
    return [g for g in np.array_split(order, n_parts) if len(g)]


def _partition_task(
    positions: np.ndarray,
    county_geoms: np.ndarray,
    per_year: dict[int, tuple[np.ndarray, np.ndarray]],
    transitions: tuple[int, int] | None,
    matches: dict[int, np.ndarray],
    change_map: bool = False,
    landuse_layers: bool = False,
) -> dict[str, list[tuple]]:
    """Areas (and transitions) of one partition; county indices are returned as ``positions``.
    ``change_map``: also the polygon of every piece whose class changed (``"changes"``);
    ``landuse_layers``: also every year's pieces with their areas (``"landuse"``).

    The first year is overlaid in full. A later year's polygon that is identical to a first-year
    polygon (``matches[year]``, indices among this task's first-year polygons, −1 for none) takes
    that polygon's county pieces and areas as they are; only the changed polygons are overlaid
    again.
    """
    grid = _pieces(county_geoms, np.arange(len(county_geoms)))
    years = sorted(per_year)
    first = years[0]
    # the geometry of a first-year polygon's part in a county is needed only when the polygon
    # changed by the target year (the transfer matrix intersects it again); else its area is
    need_piece = None
    if transitions:
        need_piece = np.ones(len(per_year[first][0]), dtype=bool)
        m = matches[transitions[1]]
        same = m >= 0
        if change_map:  # an identical polygon whose class changed is on the change map
            same &= per_year[transitions[1]][1] == per_year[first][1][np.maximum(m, 0)]
        need_piece[m[same]] = False
    if landuse_layers:  # every piece of every year is drawn
        need_piece = np.ones(len(per_year[first][0]), dtype=bool)
    overlays = {first: _overlay(per_year[first][0], grid, need_piece)}
    for year in years[1:]:
        overlays[year] = _overlay_changed(
            per_year[year][0], grid, overlays[first], matches[year], landuse_layers
        )
    areas = []
    for year in years:
        c, lu, area, _ = overlays[year]
        areas.append((positions[c], np.full(len(c), year), per_year[year][1][lu], area))
    # each county is whole in this task: its sums are final here (and the same in any partition)
    out: dict[str, list[tuple]] = {"areas": [_reduce(areas)]}
    if landuse_layers:  # the pieces the class areas sum, as they are
        out["landuse"] = [(year, positions[overlays[year][0]], per_year[year][1][overlays[year][1]],
                           overlays[year][2], *_wkb(overlays[year][3])) for year in years]  # fmt: skip
    if transitions:
        base, target = transitions
        if base != first:  # the base year must be the overlay every other year is matched to
            raise ValueError(f"transitions base {base} must be the first year {first}")
        c, frm, to, area, changed = _transitions(
            overlays[base], per_year[base], per_year[target], matches[target], change_map
        )
        out["transitions"] = [_reduce([(positions[c], frm, to, area)])]
        if change_map:  # polygons as WKB bytes: the resume cache holds numbers only
            rows, pieces = changed
            out["changes"] = [(positions[c[rows]], frm[rows], to[rows], area[rows],
                               *_wkb(pieces))]  # fmt: skip
    return out


def _overlay_changed(
    lu_geoms: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    first: tuple[np.ndarray, ...],
    match: np.ndarray,
    all_pieces: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_overlay` of a later year, reusing the first year's pieces of identical polygons.

    ``match[i]`` is the first-year polygon identical to this year's polygon ``i``, or −1;
    ``all_pieces``: build the piece of every changed polygon too (else only their areas).
    """
    c0, l0, a0, p0 = first
    same = np.flatnonzero(match >= 0)
    order = np.argsort(l0, kind="stable")
    lo = np.searchsorted(l0[order], match[same], side="left")
    hi = np.searchsorted(l0[order], match[same], side="right")
    counts = hi - lo
    # rows of the first overlay for every identical polygon, without a Python loop
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = order[np.repeat(lo, counts) + offsets]
    changed = np.flatnonzero(match < 0)
    c1, l1, a1, p1 = _overlay(
        lu_geoms[changed], grid, np.ones(len(changed), dtype=bool) if all_pieces else None
    )
    return (
        np.concatenate([c0[rows], c1]),
        np.concatenate([np.repeat(same, counts), changed[l1]]),
        np.concatenate([a0[rows], a1]),
        np.concatenate([p0[rows], p1]),
    )


def _overlay(
    lu_geoms: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    need_piece: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (county, polygon) overlap: county index, polygon index, area (m²) and the piece —
    the part of the polygon in the county, built only where ``need_piece[polygon]`` (else None).

    Polygons meet the counties' grid pieces (:func:`_pieces`), never whole counties, so each
    test costs in proportion to the polygon and a piece of at most MAX_PIECE_VERTICES vertices:

    1. An STRtree over the pieces gives the (polygon, piece) pairs whose bounding boxes meet.
    2. :func:`~pipeline.geom.intersection_area.intersection_areas` gives every pair's area without
       building the intersection (~10× faster than GEOS), and shows which polygons lie inside a
       piece (most of them): those count with their own area, and their piece is the polygon.
    3. Only a polygon that crosses a piece's boundary and whose geometry there is needed is
       intersected by GEOS.
    A polygon inside a county but across the line between two of its pieces counts in parts, the
    parts' areas adding up to its own (to rounding).
    """
    grid, owner = grid
    lu_idx, piece = shapely.STRtree(grid).query(lu_geoms)  # bounding boxes
    area, inside = intersection_areas(lu_geoms, grid, lu_idx, piece, within=True)
    cut = np.full(len(lu_idx), None, dtype=object)
    cut[inside] = lu_geoms[lu_idx[inside]]
    area[inside] = shapely.area(cut[inside])  # a polygon's own area, as GEOS gives it
    build = ~inside & (area > 0)
    build &= need_piece[lu_idx] if need_piece is not None else False
    cut[build] = shapely.intersection(grid[piece[build]], lu_geoms[lu_idx[build]])
    area[build] = shapely.area(cut[build])
    keep = area > 0
    return owner[piece[keep]], lu_idx[keep], area[keep], cut[keep]


def _transitions(
    base_overlay: tuple[np.ndarray, ...],
    base: tuple[np.ndarray, np.ndarray],
    target: tuple[np.ndarray, np.ndarray],
    target_to_base: np.ndarray,
    change_map: bool = False,
) -> tuple:
    """(county index, from code, to code, area m², changed) for the base-year pieces of one
    partition; ``target_to_base[i]`` is the base polygon identical to target polygon ``i``, or −1.
    ``changed``, with ``change_map``: the rows whose class changed and each one's polygon (the
    part of the base piece in the target polygon: its area is the row's), else None."""
    c, l0, area, piece = base_overlay
    g0, codes0 = base
    g1, codes1 = target
    # Unchanged polygons: the same geometry in both years (compared as WKB) is one matrix cell.
    match = np.full(len(g0), -1, dtype=np.int64)
    identical = np.flatnonzero(target_to_base >= 0)
    match[target_to_base[identical]] = identical
    same = match[l0] >= 0
    out_c = [c[same]]
    out_from = [codes0[l0[same]]]
    out_to = [codes1[match[l0[same]]]]
    out_area = [area[same]]
    # an identical polygon whose class changed: its piece is itself the change (built for it)
    pieces = [piece[same][out_from[0] != out_to[0]]]
    # Changed pieces meet only target polygons that match no base polygon (planar partitions).
    free = np.ones(len(g1), dtype=bool)
    free[match[match >= 0]] = False
    free_idx = np.flatnonzero(free)
    changed = np.flatnonzero(~same)
    if len(changed) and len(free_idx):
        k, j = shapely.STRtree(g1[free_idx]).query(piece[changed])  # boxes: the kernel is exact
        a = intersection_areas(piece[changed], g1[free_idx], k, j)
        keep = a > 0
        out_c.append(c[changed[k]][keep])
        out_from.append(codes0[l0[changed[k]]][keep])
        out_to.append(codes1[free_idx[j]][keep])
        out_area.append(a[keep])
        if change_map:  # GEOS only for the pairs whose class changed
            diff = out_from[-1] != out_to[-1]
            cut = shapely.intersection(piece[changed[k[keep][diff]]], g1[free_idx[j[keep][diff]]])
            odd = ~np.isin(shapely.get_type_id(cut), (3, 6))
            cut[odd] = [_polygons_only(g) for g in cut[odd]]
            pieces.append(cut)
    c_all, frm, to, a_all = (np.concatenate(x) for x in (out_c, out_from, out_to, out_area))
    changed_rows = None
    if change_map:
        changed_rows = (np.flatnonzero(frm != to), np.concatenate(pieces))
    return c_all, frm, to, a_all, changed_rows


def _pieces(county_geoms: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut large county polygons into grid pieces of at most ~MAX_PIECE_VERTICES vertices.

    Intersecting a small land-use polygon with a county costs time in proportion to the county's
    vertex count; with pieces it is bounded. The pieces of a county tile it exactly (each is the
    county intersected with one grid cell), so areas summed over pieces are the county's areas.
    Returns the pieces and, for each, the id (from ``ids``) of its county.
    """
    county_geoms = np.asarray(county_geoms, dtype=object)
    pieces, county, boxes, cut = _halve(county_geoms, exact=False)
    # clip_by_rect is fast but promises no validity: a cut piece that is not valid is cut again
    # exactly, and a county whose pieces do not add up to it is cut exactly throughout
    bad = np.flatnonzero(cut & ~shapely.is_valid(pieces))
    for k in bad:
        pieces[k] = _polygons_only(
            shapely.intersection(county_geoms[county[k]], shapely.box(*boxes[k]))
        )
    area = shapely.area(pieces)
    total = np.bincount(county, weights=area, minlength=len(county_geoms))
    off = np.flatnonzero(~np.isclose(total, shapely.area(county_geoms), rtol=1e-9, atol=0))
    if len(off):
        keep = ~np.isin(county, off)
        again, again_county, _, _ = _halve(county_geoms[off], exact=True)
        pieces = np.concatenate([pieces[keep], again])
        county = np.concatenate([county[keep], off[again_county]])
        area = shapely.area(pieces)
    nonzero = area > 0
    return pieces[nonzero], np.asarray(ids)[county[nonzero]]


def _halve(geoms: np.ndarray, exact: bool) -> tuple[np.ndarray, ...]:
    """Halve every geometry with more than MAX_PIECE_VERTICES vertices across the longer side of
    its cell, level by level, all geometries of a level in one vectorized call. Returns the
    pieces, the index of each one's geometry, its cell (xmin, ymin, xmax, ymax) and whether it
    was cut (False: the geometry itself)."""
    part, owner, box = geoms, np.arange(len(geoms)), shapely.bounds(geoms)
    done: list[tuple[np.ndarray, ...]] = []
    level = 0
    while len(part):
        small = shapely.get_num_coordinates(part) <= MAX_PIECE_VERTICES
        done.append((part[small], owner[small], box[small], np.full(small.sum(), level > 0)))
        level += 1
        part, owner, box = part[~small], owner[~small], box[~small]
        wide = (box[:, 2] - box[:, 0]) >= (box[:, 3] - box[:, 1])
        low, high = box.copy(), box.copy()
        mid_x, mid_y = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
        low[wide, 2] = high[wide, 0] = mid_x[wide]
        low[~wide, 3] = high[~wide, 1] = mid_y[~wide]
        part = np.concatenate([part, part])
        owner = np.concatenate([owner, owner])
        box = np.concatenate([low, high])
        clipped = None
        if not exact:
            # shapely's clip_by_rect takes one rectangle; its ufunc takes one per geometry. It
            # fails on some inputs (a ring reduced to three points along the cut): that level is
            # then cut exactly.
            with contextlib.suppress(shapely.errors.GEOSException):
                clipped = shapely.lib.clip_by_rect(part, *box.T.copy())
        if clipped is None:
            clipped = shapely.intersection(part, shapely.box(*box.T))
        part = clipped
        odd = ~np.isin(shapely.get_type_id(part), (3, 6))
        part[odd] = [_polygons_only(g) for g in part[odd]]
        keep = ~shapely.is_empty(part)
        part, owner, box = part[keep], owner[keep], box[keep]
    return tuple(np.concatenate(x) for x in zip(*done))


def _polygons_only(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygons of a clipping result (a cut along a county edge can add lines or points)."""
    kind = shapely.get_type_id(geom)
    if kind in (3, 6):
        return geom
    polys = [q for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)
             for q in shapely.get_parts(p)]  # fmt: skip
    return shapely.multipolygons(polys) if polys else shapely.Polygon()


def _reduce(parts: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum areas per (county, key1, key2) over ``parts`` [(county, key1, key2, area), …], in an
    order fixed by the values themselves, so the sums do not depend on partitioning or row order.
    Returns one row per group, in key order."""
    pos, k1, k2, area = (np.concatenate([t[i] for t in parts]) for i in range(4))
    pos, k1, k2 = pos.astype(np.int64), k1.astype(np.int64), k2.astype(np.int64)
    if not len(pos):
        return pos, k1, k2, area.astype(float)
    # years and class codes (validated: 0 … 124, years < 65,536) fit in 16 bits: one int64 key
    # per row sorts much faster than four columns
    key = (pos << 32) | (k1 << 16) | k2
    order = np.lexsort((area, key))
    key, area = key[order], area[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return pos[order][starts], k1[order][starts], k2[order][starts], np.add.reduceat(area, starts)


def sum_parts(
    parts: list[list[tuple]], county_ids: np.ndarray, keys: list[str], what: str
) -> pd.DataFrame:
    """The tasks' sums (m², see :func:`_reduce`) as one table in hm²."""
    flat = [t for p in parts for t in p]
    cols = ["county_id", *keys, "area_ha"]
    if not flat or not sum(len(t[0]) for t in flat):
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c == "county_id" else float) for c in cols}
        )
    pos, k1, k2, area = _reduce(flat)  # a county is in one task only: nothing left to add
    out = pd.DataFrame(
        {
            "county_id": county_ids[pos],
            keys[0]: k1,
            keys[1]: k2,
            "area_ha": area / 1e4,  # 1 ha = 10,000 m²
        }
    )
    log.debug("%s: %d rows", what, len(out))
    return out.sort_values(["county_id", *keys], kind="stable").reset_index(drop=True)


def add_residuals(
    trans: pd.DataFrame, class_areas: pd.DataFrame, base: int, target: int
) -> pd.DataFrame:
    """Rows ``from → 0`` and ``0 → to`` for area covered in one year only, so the matrix's row sums
    equal the base year's class areas and its column sums the target year's."""
    rows = []
    for year, key, other in ((base, "from_code", "to_code"), (target, "to_code", "from_code")):
        have = class_areas.loc[class_areas["year"] == year].set_index(["county_id", "class_code"])
        got = trans.groupby(["county_id", key])["area_ha"].sum()
        got.index = got.index.set_names(["county_id", "class_code"])
        # rows to or from no data (a raster's cells with data in one year only) have no class
        # area to match: without this they always looked like transitions exceeding the areas
        got = got[got.index.get_level_values("class_code") != NO_DATA]
        gap = have["area_ha"].sub(got, fill_value=0.0)
        over = gap[gap < -RESIDUAL_TOLERANCE_HA]
        if len(over):  # cannot happen without overlaps, which are checked before
            log.warning("transitions exceed the %d class areas in %d cases", year, len(over))
        gap = gap[gap > RESIDUAL_TOLERANCE_HA]
        if len(gap):
            rows.append(
                pd.DataFrame(
                    {
                        "county_id": gap.index.get_level_values(0),
                        key: gap.index.get_level_values(1),
                        other: NO_DATA,
                        "area_ha": gap.to_numpy(),
                    }
                )
            )
    if rows:
        trans = pd.concat([trans, *rows], ignore_index=True)
    return trans.sort_values(["county_id", "from_code", "to_code"], kind="stable").reset_index(
        drop=True
    )
