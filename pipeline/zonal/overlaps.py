"""Overlapping land-use polygons: found exactly, reported by county, never double-counted.

One public function, :func:`check_overlaps`. A land-use layer must be a planar partition: two
polygons whose interiors intersect would count the shared area twice.

How: each year's polygons whose bounding boxes touch a county of the study area are screened by
edge matching (:func:`pipeline.geom.overlap_screen.overlap_suspects`), which flags at least one polygon over
every connected region where polygons overlap — and, where the layer is messy (neighbours not
sharing vertices), others too. The suspects are tested against their neighbours by the area
their interiors share (:func:`~pipeline.geom.intersection_area.intersection_areas`; polygons that merely
touch share none), in chunks on the engine, and every overlap found is followed to the
neighbours of its polygons. A clean,
exactly noded layer (RESDC's polygonized data, the demo) thus costs one screening pass (~1 s for
560,000 polygons); a messy one costs pair tests where it is messy. The first year is screened
while the later years' polygons are matched with the first year's (the zonal stage reuses that);
when the first year is clean, a later year's changed polygons are tested directly instead of
screening that year. Overlaps outside every county count nowhere and are not reported.

Found overlaps are either an error naming the counties, the hectares and the feature numbers
(``landuse_overlaps: error``, the default) or resolved: the polygon that comes first in the file
keeps the shared area and it is cut out of the later ones (``landuse_overlaps: first``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from pipeline.errors import InputError, Problem
from pipeline.geom.identical import identical_polygons
from pipeline.geom.overlap_screen import overlap_suspects
from pipeline.geom.overlaps import neighbour_pairs, overlap_pairs, overlapping_pairs
from pipeline.geom.rings import Rings
from pipeline.runtime.engine import Engine

log = logging.getLogger(__name__)


def check_overlaps(
    counties: gpd.GeoDataFrame,
    landuse: dict[int, gpd.GeoDataFrame],
    engine: Engine,
    policy: str = "error",
    where: dict[int, str] | None = None,
    rings: dict[int, Rings] | None = None,
    found: dict[int, list[tuple[pd.DataFrame, pd.Series]]] | None = None,
) -> tuple[dict[int, gpd.GeoDataFrame], dict[int, np.ndarray], dict[int, shapely.STRtree]]:
    """Return the land use unchanged when no polygons overlap inside the study area's counties;
    otherwise raise (policy ``error``) or cut every overlap out of the later polygon (policy
    ``first``) and return the result. Also returns, for each later year, its
    :func:`~pipeline.geom.identical.identical_polygons` in the first year, and each year's STRtree of its
    polygons (both computed here anyway, the trees beside the screen; the zonal stage reuses
    them), or two empty dicts when overlaps were resolved. ``rings``: the
    :class:`~pipeline.geom.rings.Rings` of some years' polygons, if at hand (ingest reads them with the
    polygons); the others are computed here. ``found``: with policy ``error``, collect each
    year's overlaps there instead of raising — (pairs with the file's row numbers in ``first``
    and ``second``, hectares by county) — for :func:`overlaps_problem` (a tiled run reports all
    its tiles' overlaps at once)."""
    if not landuse:  # raster land use: nothing to check here
        return {}, {}, {}
    c_geoms = np.asarray(counties.geometry.values)
    years = sorted(landuse)
    first = years[0]
    geoms = {y: np.asarray(landuse[y].geometry.values) for y in years}
    # numba and GEOS release the GIL: the first year's screen and the matching of the later
    # years' polygons with the first year's run side by side
    with ThreadPoolExecutor(max_workers=2) as pool:
        given = rings or {}
        rings = dict(zip(years, pool.map(lambda y: given.get(y) or Rings.of(geoms[y]), years)))
        near = dict(zip(years, pool.map(lambda y: _near(geoms[y], c_geoms), years)))
        screen = pool.submit(overlap_suspects, geoms[first], near[first], rings[first])
        matching = {
            y: pool.submit(identical_polygons, geoms[y], geoms[first], (rings[y], rings[first]))
            for y in years[1:]
        }
        # the trees are built as the pool frees up (the screen takes longest), and serve the
        # pair tests below and the zonal stage
        building = {y: pool.submit(shapely.STRtree, geoms[y]) for y in years}
        flagged = {first: screen.result()}
        identical = {y: job.result() for y, job in matching.items()}
        trees = {y: job.result() for y, job in building.items()}
    out, problems = {}, []
    first_clean = True
    for year in years:
        changed = None
        if year != first and first_clean:
            # Two polygons of a later year that both recur unchanged from a clean first year
            # cannot overlap: the changed ones are tested against their neighbours, no screen.
            changed = identical[year] < 0
            flagged[year] = near[year][changed[near[year]]]
        elif year != first:
            flagged[year] = overlap_suspects(geoms[year], near[year], rings[year])
        lu = landuse[year]
        pairs = pd.DataFrame(
            overlap_pairs(
                _overlaps_of(geoms[year], flagged[year], engine, year, changed, trees[year])
            )
        )
        first_clean = first_clean and (year != first or pairs.empty)
        by_county = _by_county(counties, lu, pairs) if len(pairs) else pd.Series(dtype=float)
        if not len(by_county):  # none, or only outside every county: nothing counted twice
            out[year] = lu
            continue
        label = (where or {}).get(year, f"landuse {year}")
        if policy == "error":
            rows = lu["row"].to_numpy() if "row" in lu else np.arange(len(lu))  # the file's rows
            named = pairs.assign(first=rows[pairs["first"]], second=rows[pairs["second"]])
            if found is not None:
                found.setdefault(year, []).append((named, by_county))
                out[year] = lu
            else:
                problems.append(overlaps_problem(label, [(named, by_county)]))
            continue
        log.warning(
            "%s: %d overlapping polygon pairs (%.2f ha) resolved: the earlier polygon keeps the "
            "shared area",
            label,
            len(pairs),
            float(pairs["area_ha"].sum()),
        )
        out[year] = _resolve(lu, pairs)
    if problems:
        raise InputError(problems)
    resolved = any(out[y] is not landuse[y] for y in years)
    return out, ({} if resolved else identical), ({} if resolved else trees)


def _near(geoms: np.ndarray, c_geoms: np.ndarray) -> np.ndarray:
    """Indices of the polygons whose bounding boxes meet a county's."""
    near = np.zeros(len(geoms), dtype=bool)
    near[shapely.STRtree(c_geoms).query(geoms)[0]] = True
    return np.flatnonzero(near)


def _overlaps_of(
    geoms: np.ndarray,
    flagged: np.ndarray,
    engine: Engine,
    year: int,
    changed: np.ndarray | None = None,
    tree: shapely.STRtree | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Test the flagged polygons against their neighbours, in chunks on the engine; then, as long
    as overlaps turn up, the neighbours of every polygon found overlapping. The screen puts a
    flagged polygon in every connected overlapping region, so following overlaps from there
    reaches every overlapping pair (two overlapping tiles of a layer, say, whose inner edges the
    screen sees as matched). Every overlap is followed, however small: a region can be connected
    through slivers below the reporting tolerance (a layer whose neighbours do not share vertices
    pays for that with more pair tests). ``changed``: if given, pairs of two unchanged polygons
    are skipped, and ``flagged`` must hold every changed polygon near the counties (then all
    pairs that can overlap are tested in the first round). ``tree``: the STRtree of ``geoms``,
    if at hand."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    tested = np.zeros(len(geoms), dtype=bool)
    seen: np.ndarray = np.zeros(0, dtype=np.int64)  # pairs tested so far, as a * n + b
    frontier = np.asarray(flagged, dtype=np.int64)
    if tree is None and len(frontier):
        tree = shapely.STRtree(geoms)
    while len(frontier):
        tested[frontier] = True
        ab = neighbour_pairs(geoms, frontier, tree)
        if changed is not None:
            ab = ab[changed[ab[:, 0]] | changed[ab[:, 1]]]
        key = ab[:, 0] * len(geoms) + ab[:, 1]
        new = ~np.isin(key, seen)
        ab, seen = ab[new], np.union1d(seen, key)
        if not len(ab):
            break
        n_chunks = max(1, min(len(ab) // 5000, 4 * engine.n_workers))
        tasks = [(geoms, ab[c, 0], ab[c, 1]) for c in np.array_split(np.arange(len(ab)), n_chunks)]
        hits = engine.map(overlapping_pairs, tasks, desc=f"overlap check {year}")
        found.extend(hits)
        if changed is not None:
            # every changed polygon was flagged, so every pair with one has been tested
            break
        overlapping = np.unique(np.concatenate([np.concatenate([h[0], h[1]]) for h in hits]))
        near = np.unique(tree.query(geoms[overlapping])[1])
        frontier = near[~tested[near]]
    return found


def _by_county(counties: gpd.GeoDataFrame, lu: gpd.GeoDataFrame, pairs: pd.DataFrame) -> pd.Series:
    """Overlapping hectares inside each county."""
    geoms = np.asarray(lu.geometry.values)
    shared = shapely.intersection(geoms[pairs["first"]], geoms[pairs["second"]])
    c_geoms = np.asarray(counties.geometry.values)
    s, c = shapely.STRtree(c_geoms).query(shared, predicate="intersects")
    area = shapely.area(shapely.intersection(shared[s], c_geoms[c])) / 1e4
    ids = counties["county_id"].to_numpy()[c]
    return pd.Series(area).groupby(ids).sum().sort_values(ascending=False)


def overlaps_problem(label: str, found: list[tuple[pd.DataFrame, pd.Series]]) -> Problem:
    """The error for one year's overlapping polygons, from one or more findings (pairs by the
    file's row numbers, hectares by county; see ``found`` in :func:`check_overlaps`): a pair
    found twice (by two tiles) counts once, a county's hectares add up."""
    pairs = (
        pd.concat([p for p, _ in found])
        .drop_duplicates(["first", "second"])
        .sort_values(["first", "second"])
    )
    by_county = pd.concat([c for _, c in found]).groupby(level=0).sum()
    by_county = by_county.sort_values(ascending=False, kind="stable")
    return Problem(label, _describe(pairs, by_county))


def _describe(pairs: pd.DataFrame, by_county: pd.Series) -> str:
    total = float(pairs["area_ha"].sum())
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
