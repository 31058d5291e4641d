"""Overlapping land-use polygons: found exactly, reported by county, never double-counted.

One public function, :func:`check_overlaps`. A land-use layer must be a planar partition: two
polygons whose interiors intersect would count the shared area twice. Pairs of polygons with
intersecting bounding boxes are tested with the DE-9IM pattern ``2********`` (interiors share an
area; polygons that only touch along an edge pass), in chunks on the engine.

Which polygons need the test: all of them (``ecovoucher validate``), or, in a run, only those of
the counties whose class areas do not add up to the county's area. In a county the summed class
areas are the covered area plus every overlap, and the covered area is at most the county's area:
a sum equal to the county's area (to 1e-9) therefore proves there is neither a gap nor an overlap
there, and the exact test is needed only where the sum differs. Found
overlaps are either an error naming the counties, the hectares and the feature numbers
(``landuse_overlaps: error``, the default) or resolved: the polygon that comes first in the file
keeps the shared area and it is cut out of the later ones (``landuse_overlaps: first``).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.engine import Engine
from pipeline.errors import InputError, Problem

log = logging.getLogger(__name__)

#: overlaps smaller than this (hm², i.e. 1 m²) are digitizing noise and are ignored
OVERLAP_TOLERANCE_HA = 1e-4
#: a county whose class areas sum to its area within this share has no gap and no overlap
SUM_TOLERANCE = 1e-9


def suspect_counties(
    counties: gpd.GeoDataFrame, class_areas: pd.DataFrame
) -> dict[int, np.ndarray]:
    """Year → positions of the counties whose class areas do not sum to the county's area."""
    area_ha = counties["area_m2"].to_numpy() / 1e4
    ids = counties["county_id"].to_numpy()
    out = {}
    for year, rows in class_areas.groupby("year"):
        total = rows.groupby("county_id")["area_ha"].sum().reindex(ids).fillna(0.0).to_numpy()
        tol = np.maximum(OVERLAP_TOLERANCE_HA, SUM_TOLERANCE * area_ha)
        out[int(year)] = np.flatnonzero(np.abs(total - area_ha) > tol)
    return out


def check_overlaps(
    counties: gpd.GeoDataFrame,
    landuse: dict[int, gpd.GeoDataFrame],
    engine: Engine,
    policy: str = "error",
    where: dict[int, str] | None = None,
    suspects: dict[int, np.ndarray] | None = None,
) -> dict[int, gpd.GeoDataFrame]:
    """Return the land use unchanged when no polygons overlap; otherwise raise (policy ``error``)
    or cut every overlap out of the later polygon (policy ``first``) and return the result.

    ``suspects``: year → positions of the counties to test (default: every polygon is tested).
    """
    out, problems = {}, []
    for year, lu in sorted(landuse.items()):
        subset = None
        if suspects is not None:
            positions = suspects.get(year, np.array([], dtype=np.int64))
            if not len(positions):
                out[year] = lu
                continue
            c_geoms = np.asarray(counties.geometry.values)[positions]
            subset = np.unique(shapely.STRtree(np.asarray(lu.geometry.values)).query(c_geoms)[1])
        pairs = _overlapping_pairs(lu, engine, subset)
        if not len(pairs):
            out[year] = lu
            continue
        by_county = _by_county(counties, lu, pairs)
        label = (where or {}).get(year, f"landuse {year}")
        total = float(pairs["area_ha"].sum())
        if policy == "error":
            problems.append(Problem(label, _describe(pairs, by_county, total)))
            continue
        log.warning(
            "%s: %d overlapping polygon pairs (%.2f ha) resolved: the earlier polygon keeps the "
            "shared area",
            label,
            len(pairs),
            total,
        )
        out[year] = _resolve(lu, pairs)
    if problems:
        raise InputError(problems)
    return out


def _overlapping_pairs(
    lu: gpd.GeoDataFrame, engine: Engine, subset: np.ndarray | None = None
) -> pd.DataFrame:
    geoms = np.asarray(lu.geometry.values)
    tree = shapely.STRtree(geoms)
    if subset is None:
        a, b = tree.query(geoms)
    else:  # pairs with at least one polygon of the subset (both are, for an overlap inside it)
        a, b = tree.query(geoms[subset])
        a = subset[a]
        a, b = np.minimum(a, b), np.maximum(a, b)
        ab = np.unique(np.stack([a, b], axis=1), axis=0)
        a, b = ab[:, 0], ab[:, 1]
    keep = a < b
    a, b = a[keep], b[keep]
    n_parts = max(1, 4 * engine.n_workers)
    chunks = [
        (geoms, ca, cb) for ca, cb in zip(np.array_split(a, n_parts), np.array_split(b, n_parts))
    ]
    found = engine.map(_overlaps_in_chunk, chunks, desc="overlap check")
    a = np.concatenate([f[0] for f in found])
    b = np.concatenate([f[1] for f in found])
    area = np.concatenate([f[2] for f in found]) / 1e4  # m² → hm²
    keep = area > OVERLAP_TOLERANCE_HA
    return pd.DataFrame({"first": a[keep], "second": b[keep], "area_ha": area[keep]})


def _overlaps_in_chunk(
    geoms: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hit = shapely.relate_pattern(geoms[a], geoms[b], "2********")
    a, b = a[hit], b[hit]
    return a, b, shapely.area(shapely.intersection(geoms[a], geoms[b]))


def _by_county(counties: gpd.GeoDataFrame, lu: gpd.GeoDataFrame, pairs: pd.DataFrame) -> pd.Series:
    """Overlapping hectares inside each county."""
    geoms = np.asarray(lu.geometry.values)
    shared = shapely.intersection(geoms[pairs["first"]], geoms[pairs["second"]])
    c_geoms = np.asarray(counties.geometry.values)
    s, c = shapely.STRtree(c_geoms).query(shared, predicate="intersects")
    area = shapely.area(shapely.intersection(shared[s], c_geoms[c])) / 1e4
    ids = counties["county_id"].to_numpy()[c]
    return pd.Series(area).groupby(ids).sum().sort_values(ascending=False)


def _describe(pairs: pd.DataFrame, by_county: pd.Series, total: float) -> str:
    counties = ", ".join(f"{cid} ({ha:,.2f} ha)" for cid, ha in by_county.head(20).items())
    more = f" … ({len(by_county)} counties in all)" if len(by_county) > 20 else ""
    examples = ", ".join(
        f"#{r.first} & #{r.second} ({r.area_ha:,.2f} ha)" for r in pairs.head(5).itertuples()
    )
    return (
        f"{len(pairs)} pairs of land-use polygons overlap, {total:,.2f} ha in all, which would be "
        f"counted twice. Counties affected: {counties}{more}. Features (0-based row numbers): "
        f"{examples}. Fix the layer (e.g. dissolve duplicates), or set `landuse_overlaps: first` "
        "in the config to let the earlier polygon keep the shared area."
    )


def _resolve(lu: gpd.GeoDataFrame, pairs: pd.DataFrame) -> gpd.GeoDataFrame:
    geoms = np.asarray(lu.geometry.values).copy()
    for second, group in pairs.groupby("second", sort=True):
        earlier = shapely.union_all(geoms[group["first"].to_numpy()])
        geoms[second] = shapely.difference(geoms[second], earlier)
    out = lu.copy()
    out[out.geometry.name] = geoms
    return out
