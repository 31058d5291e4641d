"""Overlapping land-use polygons: found exactly, reported by county, never double-counted.

One public function, :func:`check_overlaps`. A land-use layer must be a planar partition: two
polygons whose interiors intersect would count the shared area twice.

How: the first year's polygons whose bounding boxes touch a county of the study area are checked
as a polygonal coverage with GEOS' coverage validator (``shapely.coverage_invalid_edges``), which
flags every polygon with an edge that is not matched by a neighbour or lies inside another polygon
— any overlap flags at least one of its two polygons (exact duplicates flag both). Only flagged
polygons are then tested against their neighbours with the DE-9IM pattern ``2********``
(interiors share an area; polygons that merely touch pass), in chunks on the engine. A later year
is checked the same way, except when the first year is clean: then two of its polygons that are
identical (same WKB) to first-year polygons cannot overlap each other, and only its changed
polygons are tested against their neighbours. A clean, exactly noded layer (RESDC's polygonized
data, the demo) thus costs one coverage pass; a messy one costs pair tests where it is messy.
Overlaps outside every county count nowhere and are not reported.

Found overlaps are either an error naming the counties, the hectares and the feature numbers
(``landuse_overlaps: error``, the default) or resolved: the polygon that comes first in the file
keeps the shared area and it is cut out of the later ones (``landuse_overlaps: first``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.engine import Engine
from pipeline.errors import InputError, Problem
from pipeline.zonal import identical_polygons

log = logging.getLogger(__name__)

#: overlaps smaller than this (hm², i.e. 1 m²) are digitizing noise and are ignored
OVERLAP_TOLERANCE_HA = 1e-4


def check_overlaps(
    counties: gpd.GeoDataFrame,
    landuse: dict[int, gpd.GeoDataFrame],
    engine: Engine,
    policy: str = "error",
    where: dict[int, str] | None = None,
) -> tuple[dict[int, gpd.GeoDataFrame], dict[int, np.ndarray]]:
    """Return the land use unchanged when no polygons overlap inside the study area's counties;
    otherwise raise (policy ``error``) or cut every overlap out of the later polygon (policy
    ``first``) and return the result. Also returns, for each later year, its
    :func:`~pipeline.zonal.identical_polygons` in the first year (computed here anyway; the zonal
    stage reuses it), or an empty dict when overlaps were resolved."""
    if not landuse:  # raster land use: nothing to check here
        return {}, {}
    c_geoms = np.asarray(counties.geometry.values)
    years = sorted(landuse)
    first, later = years[0], years[1:]
    n = engine.n_workers
    # The first year gets the coverage pass; meanwhile the later years' polygons are matched
    # with the first year's (GEOS and hashing release the GIL, so the two run side by side).
    with ThreadPoolExecutor(max_workers=2) as pool:
        first_job = pool.submit(_flagged, landuse[first], c_geoms, n)
        first_geoms = np.asarray(landuse[first].geometry.values)
        identical = dict(
            zip(
                later,
                pool.map(
                    lambda y: identical_polygons(
                        np.asarray(landuse[y].geometry.values), first_geoms
                    ),
                    later,
                ),
            )
        )
        flagged = {first: first_job.result()}
    first_pairs = _overlaps_of(
        np.asarray(landuse[first].geometry.values), flagged[first], engine, first
    )
    for year in later:
        if _pairs_table(first_pairs).empty:
            # The first year is a clean partition, so two polygons of a later year that are
            # identical to first-year polygons cannot overlap: only changed ones need testing.
            geoms = np.asarray(landuse[year].geometry.values)
            near = np.unique(shapely.STRtree(geoms).query(c_geoms)[1])
            flagged[year] = np.intersect1d(near, np.flatnonzero(identical[year] < 0))
        else:
            flagged[year] = _flagged(landuse[year], c_geoms, n)
    out, problems = {}, []
    for year in years:
        lu = landuse[year]
        geoms = np.asarray(lu.geometry.values)
        found = first_pairs if year == first else _overlaps_of(geoms, flagged[year], engine, year)
        pairs = _pairs_table(found)
        by_county = _by_county(counties, lu, pairs) if len(pairs) else pd.Series(dtype=float)
        if not len(by_county):  # none, or only outside every county: nothing counted twice
            out[year] = lu
            continue
        label = (where or {}).get(year, f"landuse {year}")
        total = float(pairs["area_ha"].sum())
        if policy == "error":
            problems.append(Problem(label, _describe(lu, pairs, by_county, total)))
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
    resolved = any(out[y] is not landuse[y] for y in years)
    return out, ({} if resolved else identical)


def county_overlaps(counties: gpd.GeoDataFrame) -> pd.DataFrame:
    """Pairs of county polygons that overlap: ``first, second`` (county ids), ``area_ha``.

    Land use in such a strip counts in both counties; boundary data from other sources often has
    slivers like that. Same method as for land use: coverage validation, then pair tests.
    """
    geoms = np.asarray(counties.geometry.values)
    flagged = _flagged(counties, geoms)
    if not len(flagged):
        return pd.DataFrame({"first": [], "second": [], "area_ha": []})
    ab = _neighbour_pairs(geoms, flagged)
    pairs = _pairs_table([_overlaps_in_chunk(geoms, ab[:, 0], ab[:, 1])])
    ids = counties["county_id"].to_numpy()
    return pairs.assign(
        first=ids[pairs["first"].astype(int)], second=ids[pairs["second"].astype(int)]
    )


def _flagged(lu: gpd.GeoDataFrame, c_geoms: np.ndarray, n_chunks: int = 1) -> np.ndarray:
    """Indices of the polygons touching the study area that the coverage validator flags.

    With ``n_chunks`` > 1 the polygons are cut into vertical strips validated side by side; a
    polygon whose bounding box crosses a strip edge belongs to both strips, so the two polygons of
    any overlap are together in the strip holding (part of) their shared area. Unmatched edges
    along a strip's edge are on that strip's outer boundary, which the validator accepts.
    """
    geoms = np.asarray(lu.geometry.values)
    near = np.unique(shapely.STRtree(geoms).query(c_geoms)[1])
    if not len(near):
        return near
    bounds = shapely.bounds(geoms[near])
    cuts = np.quantile((bounds[:, 0] + bounds[:, 2]) / 2, np.linspace(0, 1, n_chunks + 1)[1:-1])
    edges = [-np.inf, *cuts, np.inf]
    strips = [near[(bounds[:, 2] >= lo) & (bounds[:, 0] <= hi)] for lo, hi in pairwise(edges)]
    with ThreadPoolExecutor(max_workers=len(strips)) as pool:
        invalid = pool.map(shapely.coverage_invalid_edges, [geoms[s] for s in strips])
        flagged = [s[~shapely.is_empty(e)] for s, e in zip(strips, invalid)]
    return np.unique(np.concatenate(flagged))


def _neighbour_pairs(geoms: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Each (a, b), a < b, of a flagged polygon and a polygon whose bounding box meets it, once."""
    i, j = shapely.STRtree(geoms).query(geoms[flagged])
    a, b = np.minimum(flagged[i], j), np.maximum(flagged[i], j)
    key = np.unique(a[a < b] * len(geoms) + b[a < b])  # one int64 per pair: a fast unique
    return np.stack([key // len(geoms), key % len(geoms)], axis=1)


def _overlaps_of(
    geoms: np.ndarray, flagged: np.ndarray, engine: Engine, year: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Test the flagged polygons against their neighbours, in chunks on the engine."""
    if not len(flagged):
        return []
    ab = _neighbour_pairs(geoms, flagged)
    chunks = np.array_split(np.arange(len(ab)), max(1, min(len(ab) // 5000, 4 * engine.n_workers)))
    tasks = [(geoms, ab[c, 0], ab[c, 1]) for c in chunks if len(c)]
    return engine.map(_overlaps_in_chunk, tasks, desc=f"overlap check {year}")


def _pairs_table(found: list[tuple]) -> pd.DataFrame:
    if not found:
        return pd.DataFrame({"first": [], "second": [], "area_ha": []})
    a = np.concatenate([f[0] for f in found])
    b = np.concatenate([f[1] for f in found])
    area = np.concatenate([f[2] for f in found]) / 1e4  # m² → hm²
    pairs = pd.DataFrame({"first": a, "second": b, "area_ha": area})
    pairs = pairs[pairs["area_ha"] > OVERLAP_TOLERANCE_HA]
    return pairs.sort_values(["first", "second"]).reset_index(drop=True)


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


def _describe(lu: gpd.GeoDataFrame, pairs: pd.DataFrame, by_county: pd.Series, total: float) -> str:
    counties = ", ".join(f"{cid} ({ha:,.2f} ha)" for cid, ha in by_county.head(20).items())
    more = f" … ({len(by_county)} counties in all)" if len(by_county) > 20 else ""
    rows = lu["row"].to_numpy() if "row" in lu else np.arange(len(lu))  # the file's row numbers
    examples = ", ".join(
        f"#{rows[r.first]} & #{rows[r.second]} ({r.area_ha:,.2f} ha)"
        for r in pairs.head(5).itertuples()
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
