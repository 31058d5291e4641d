"""Tiled runs: the land use is held a tile at a time, so memory stays bounded as the input grows.

One public function, :func:`tiled_zonal_areas`, the tiled form of the overlap check and the zonal
stage (``--tiles N`` or ``--memory-limit SIZE``). Ingest has streamed each year's polygons to a
spill file (:mod:`pipeline.spill`). The zonal partitions (:func:`pipeline.zonal.partitions`, in
Hilbert order) are cut into N runs of consecutive partitions — the tiles, each a compact group of
counties. Tile by tile, both years' polygons whose bounding boxes meet a county of the tile are
read back, checked for overlaps (:func:`pipeline.overlaps.check_overlaps`, on the tile's
counties), matched year to year, and summed by the tile's zonal tasks; then the tile is freed.

Why the results are the same as untiled, bit for bit: a county's sums depend only on the polygons
whose boxes meet its box, which its tile holds, in the file's order, and each county is computed
whole in the same partition either way. (With ``landuse_overlaps: first``, a polygon cut by an
earlier one whose box misses the tile is cut only where it matters, inside the tile: the areas
agree to rounding, ~1e-12, not bit for bit.) An overlap inside a county has both polygons in that
county's tile, so it is found there; with ``landuse_overlaps: error`` every tile is still
checked, and all tiles' findings are reported together.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from pipeline.catalog import Catalog
from pipeline.config import Config
from pipeline.engine import Engine
from pipeline.errors import InputError, Problem
from pipeline.overlaps import check_overlaps
from pipeline.resume import PartitionCache
from pipeline.spill import Spill, give_back_memory
from pipeline.zonal import ZonalResult, partitions, summed, zonal_parts

log = logging.getLogger(__name__)

#: peak memory per land-use polygon held (both years count), measured on the national demo run
BYTES_PER_POLYGON = 2_000
#: memory of a run besides the land use it holds: Python, the libraries, the counties and their
#: overlap check, the outputs (measured with the national counties, 4.2 million vertices: a tiled
#: run's floor is 0.9–1.1 GB)
BASE_BYTES = 900 * 2**20
#: bounding boxes read at a time when sorting polygons into tiles
_CHUNK = 65_536


def tile_count(
    catalog: Catalog, config: Config, tiles: int | None = None, memory_limit: int | None = None
) -> int:
    """How many tiles a run is cut into: ``tiles`` if given; else as many as keep it under
    ``memory_limit`` bytes by the memory model (:data:`BASE_BYTES` + :data:`BYTES_PER_POLYGON`
    per polygon held), from the land-use files' feature counts; 1 (no tiling) by default, for
    raster land use, and when the run fits whole."""
    entries = [catalog.datasets.landuse.get(y) for y in (config.years.base, config.years.target)]
    if any(e is None or e.format != "vector" for e in entries):
        return 1  # rasters are read a block at a time anyway
    if tiles or not memory_limit:
        return tiles or 1
    features = 0
    for entry in entries:
        try:
            info = pyogrio.read_info(entry.path, layer=entry.layer, force_feature_count=True)
        except Exception:  # unreadable: ingest says why, with the fix
            return 1
        features += max(0, int(info["features"]))
    return _tiles_for(features, memory_limit)


def _tiles_for(features: int, memory_limit: int) -> int:
    """How many tiles keep a run over ``features`` land-use polygons (both years together)
    under ``memory_limit`` bytes. A tile holds its share of the polygons plus those on its
    edges, counted here as 10 % more."""
    budget = memory_limit - BASE_BYTES
    if budget <= 0:
        raise InputError(
            f"--memory-limit {memory_limit / 2**30:.2f} GiB is below the ~"
            f"{BASE_BYTES / 2**30:.1f} GiB a run needs before any land use; raise it",
            where="command line",
        )
    return max(1, math.ceil(1.1 * features * BYTES_PER_POLYGON / budget))


def tiled_zonal_areas(
    counties: gpd.GeoDataFrame,
    spills: dict[int, Spill],
    engine: Engine,
    n_tiles: int,
    policy: str = "error",
    where: dict[int, str] | None = None,
    transitions: tuple[int, int] | None = None,
    partition_size: int = 16,
    cache: PartitionCache | None = None,
    check_only: bool = False,
) -> ZonalResult | None:
    """The overlap check and :func:`~pipeline.zonal.zonal_areas`, tile by tile (see the module
    text); ``check_only``: the overlap check alone (``ecovoucher validate``), returning None."""
    give_back_memory()  # what streaming the land use to disk freed
    groups = partitions(counties, partition_size)
    with ThreadPoolExecutor(max_workers=2) as pool:  # GEOS drops the GIL
        found = {y: pool.submit(_meetings, s, counties) for y, s in spills.items()}
        meetings = {y: job.result() for y, job in found.items()}
    runs = _balanced_runs(groups, meetings, len(counties), n_tiles)
    tile_of = np.empty(len(counties), dtype=np.int64)
    for t, run in enumerate(runs):
        for g in run:
            tile_of[groups[g]] = t
    members = {y: _members(m, tile_of, len(runs)) for y, m in meetings.items()}
    del meetings
    held = [sum(len(m[t]) for m in members.values()) for t in range(len(runs))]
    log.info(
        "tiles: %d of %s land-use polygons (both years); estimated peak memory %.1f GiB",
        len(runs),
        "–".join(f"{n:,}" for n in sorted({min(held), max(held)})),
        (BASE_BYTES + BYTES_PER_POLYGON * max(held)) / 2**30,
    )
    problems: list[Problem] = []
    parts: list[dict] = []
    for t, run in enumerate(runs):
        landuse, rings = {}, {}
        for y, spill in spills.items():
            landuse[y], found = spill.read(members[y][t])
            if found is not None:
                rings[y] = found
        mine = np.concatenate([groups[g] for g in run])
        try:
            landuse, identical, trees = check_overlaps(
                counties.iloc[np.sort(mine)], landuse, engine, policy, where, rings=rings
            )
        except InputError as exc:  # the other tiles are still checked: every problem at once
            problems.extend(exc.problems)
            continue
        if problems or check_only:
            continue
        parts += zonal_parts(
            counties,
            [groups[g] for g in run],
            landuse,
            engine,
            transitions,
            cache,
            identical,
            trees,
            desc=f"zonal areas, tile {t + 1}/{len(runs)}",
        )
        del landuse, rings, identical, trees
        give_back_memory()
    if problems:
        raise InputError(problems)
    return None if check_only else summed(parts, counties, transitions)


def _meetings(spill: Spill, counties: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The (polygon, county) pairs whose bounding boxes meet — the candidates the zonal tasks and
    the overlap check take: spill positions and county positions."""
    tree = shapely.STRtree(np.asarray(counties.geometry.values))
    bounds = spill.bounds
    polys, owners = [], []
    for start in range(0, len(bounds), _CHUNK):
        b = bounds[start : start + _CHUNK]
        poly, county = tree.query(shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3]))
        polys.append(poly + start)
        owners.append(county)
    if not polys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(polys), np.concatenate(owners)


def _balanced_runs(
    groups: list[np.ndarray],
    meetings: dict[int, tuple[np.ndarray, np.ndarray]],
    n_counties: int,
    n_tiles: int,
) -> list[np.ndarray]:
    """Cut the partitions (in their Hilbert order) into ``n_tiles`` runs of consecutive ones that
    meet about as many polygons each: equal counts of counties would give the dense east of
    China tiles several times larger than the west's."""
    per_county = sum(np.bincount(c, minlength=n_counties) for _, c in meetings.values())
    load = np.array([per_county[g].sum() for g in groups], dtype=float) + 1.0  # no zero loads
    cum = np.cumsum(load)
    n = min(n_tiles, len(groups))
    cuts, start = [], 0
    for k in range(n - 1):  # each tile takes an equal share of what the tiles left must hold
        done = cum[start - 1] if start else 0.0
        end = int(np.searchsorted(cum, done + (cum[-1] - done) / (n - k), side="left")) + 1
        start = min(max(end, start + 1), len(groups) - (n - k - 1))  # one partition at least
        cuts.append(start)
    return [r for r in np.split(np.arange(len(groups)), cuts) if len(r)]


def _members(
    meetings: tuple[np.ndarray, np.ndarray], tile_of: np.ndarray, n_tiles: int
) -> list[np.ndarray]:
    """For each tile, the spill positions (ascending) of the polygons whose bounding boxes meet
    the box of one of its counties (a polygon on a tile's edge is in both tiles)."""
    poly, county = meetings
    n = int(poly.max()) + 1 if len(poly) else 1
    key = np.unique(tile_of[county] * n + poly)  # sorted: by tile, then position
    tile, position = key // n, key % n
    cut = np.searchsorted(tile, np.arange(n_tiles + 1))
    return [position[cut[t] : cut[t + 1]] for t in range(n_tiles)]
