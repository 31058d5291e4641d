"""Overlapping land-use polygons: found exactly, reported by county, never double-counted.

One public function, :func:`check_overlaps`. A land-use layer must be a planar partition: two
polygons whose interiors intersect would count the shared area twice. Every pair of polygons with
intersecting bounding boxes is tested with the DE-9IM pattern ``2********`` (interiors share an
area; polygons that only touch along an edge pass), partition by partition on the engine. Found
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


def check_overlaps(
    counties: gpd.GeoDataFrame,
    landuse: dict[int, gpd.GeoDataFrame],
    engine: Engine,
    policy: str = "error",
    where: dict[int, str] | None = None,
) -> dict[int, gpd.GeoDataFrame]:
    """Return the land use unchanged when no polygons overlap; otherwise raise (policy ``error``)
    or cut every overlap out of the later polygon (policy ``first``) and return the result."""
    out, problems = {}, []
    for year, lu in sorted(landuse.items()):
        pairs = _overlapping_pairs(lu, engine)
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


def _overlapping_pairs(lu: gpd.GeoDataFrame, engine: Engine) -> pd.DataFrame:
    geoms = np.asarray(lu.geometry.values)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms)
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
