"""Tiled runs: the land use is held a tile at a time, so memory stays bounded as the input grows.

One public function, :func:`tiled_zonal_areas` (with :func:`tile_plan`, which says how many
tiles), the tiled form of the overlap check and the zonal
stage (``--tiles N`` or ``--memory-limit SIZE``). Ingest has streamed each year's polygons to a
spill file (:mod:`pipeline.ingest.spill`). The zonal partitions (:func:`pipeline.zonal.vector.partitions`, in
Hilbert order) are cut into N runs of consecutive partitions — the tiles, each a compact group of
counties. Tile by tile, both years' polygons whose bounding boxes meet a county of the tile are
read back, checked for overlaps (:func:`pipeline.zonal.overlaps.check_overlaps`, on the tile's
counties), matched year to year, and summed by the tile's zonal tasks; then the tile is freed.

Why the results are the same as untiled, bit for bit: a county's sums depend only on the polygons
whose boxes meet its box, which its tile holds, in the file's order, and each county is computed
whole in the same partition either way. (With ``landuse_overlaps: first``, a polygon cut by an
earlier one whose box misses the tile is cut only where it matters, inside the tile: the areas
agree to rounding, ~1e-12, not bit for bit.) An overlap inside a county has both polygons in that
county's tile, so it is found there; with ``landuse_overlaps: error`` every tile is checked and
the findings are merged into one report per year (a pair seen by two tiles counts once), the
same message as an untiled run's.

A study area smaller than the counties file keeps only the polygons near its counties (ingest
skips the others as it reads), and ``--memory-limit`` is then checked again against the polygons
kept: fewer may need fewer tiles.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from pipeline.errors import InputError
from pipeline.geom.boxes import box_pairs
from pipeline.ingest.spill import Spill, give_back_memory
from pipeline.runtime.engine import Engine
from pipeline.runtime.resume import PartitionCache
from pipeline.settings.catalog import Catalog
from pipeline.settings.config import Config
from pipeline.zonal.overlaps import check_overlaps, overlaps_problem
from pipeline.zonal.vector import ZonalResult, partitions, summed, zonal_parts

log = logging.getLogger(__name__)

#: share of the machine's memory a run keeps under when no --memory-limit is given
MACHINE_SHARE = 0.75
#: peak memory per land-use polygon held (both years count), measured on the national demo run
BYTES_PER_POLYGON = 2_000
#: memory of a run besides the land use it holds: Python, the libraries, the counties and their
#: overlap check, the outputs (measured with the national counties, 4.2 million vertices: a tiled
#: run's floor is 0.9–1.1 GB)
BASE_BYTES = 900 * 2**20


@dataclass(frozen=True)
class TilePlan:
    """How a run is tiled: ``n`` tiles (1: not tiled), and ``limit``, the memory limit in bytes
    that ``n`` was chosen for (None when ``--tiles`` chose it)."""

    n: int = 1
    limit: int | None = None


def tile_plan(
    catalog: Catalog, config: Config, tiles: int | None = None, memory_limit: int | None = None
) -> TilePlan:
    """How many tiles a run is cut into: ``tiles`` if given; else as many as keep it under
    ``memory_limit`` bytes (default: :data:`MACHINE_SHARE` of this machine's memory) by the
    memory model (:data:`BASE_BYTES` + :data:`BYTES_PER_POLYGON` per polygon held), from the
    land-use files' feature counts; 1 (no tiling) for raster land use and when the run fits
    whole — nationally, on any machine with more than ~3 GB."""
    entries = [catalog.datasets.landuse.get(y) for y in (config.years.base, config.years.target)]
    if any(e is None or e.format != "vector" for e in entries):
        if tiles or memory_limit:
            log.info("raster land use is read a block at a time: --tiles/--memory-limit not used")
        return TilePlan()
    if tiles:
        return TilePlan(tiles)
    limit = memory_limit or _machine_memory()
    if not limit:
        return TilePlan()
    try:
        features = sum(_feature_count(f, e.layer) for e in entries for f in e.all_files)
    except Exception:  # unreadable: ingest says why, with the fix
        return TilePlan(1, limit)
    if memory_limit is not None:
        return TilePlan(_tiles_for(features, limit), limit)
    # the machine's share: tile if needed, never refuse to run
    n = _tiles_for(features, max(limit, BASE_BYTES + 2**28))
    if n > 1:
        log.info(
            "%s land-use polygons would need more than %.1f GiB (%.0f%% of this machine's "
            "memory) held whole: running in %d tiles (--memory-limit or --tiles to choose)",
            f"{features:,}", limit / 2**30, 100 * MACHINE_SHARE, n,
        )  # fmt: skip
    return TilePlan(n, limit)


def _feature_count(path: Path, layer: str | int | None) -> int:
    """Features in a vector file: from the .shx's size for a shapefile (100 bytes of header and 8
    per record; instant, where GDAL's read_info takes ~0.1 s nationally), else from GDAL."""
    shx = path.with_suffix(".shx")
    if path.suffix.lower() == ".shp" and shx.is_file():
        return max(0, (shx.stat().st_size - 100) // 8)
    info = pyogrio.read_info(path, layer=layer, force_feature_count=True)
    return max(0, int(info["features"]))


def _machine_memory() -> int | None:
    """:data:`MACHINE_SHARE` of the memory this process may use, in bytes: the physical memory,
    or a container's (cgroup) limit if lower; None where unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return int(MACHINE_SHARE * total)


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
    plan: TilePlan,
    policy: str = "error",
    where: dict[int, str] | None = None,
    transitions: tuple[int, int] | None = None,
    partition_size: int = 16,
    cache: PartitionCache | None = None,
    check_only: bool = False,
    change_map: bool = False,
    landuse_layers: bool = False,
) -> ZonalResult | None:
    """The overlap check and :func:`~pipeline.zonal.vector.zonal_areas`, tile by tile (see the module
    text), in the tiles of ``plan`` (:func:`tile_plan`) — fewer if the polygons actually kept
    (a smaller study area keeps fewer) need fewer under its memory limit than the files' feature
    counts said. ``check_only``: the overlap check alone (``ecovoucher validate``), returning
    None; ``change_map``, ``landuse_layers``: as for
    :func:`~pipeline.zonal.vector.zonal_areas`."""
    give_back_memory()  # what streaming the land use to disk freed
    n_tiles = plan.n
    if plan.limit:
        kept = sum(s.n for s in spills.values())
        n_tiles = min(n_tiles, _tiles_for(kept, max(plan.limit, BASE_BYTES + 1)))
    groups = partitions(counties, partition_size)
    with ThreadPoolExecutor(max_workers=2) as pool:  # GEOS drops the GIL
        jobs = {y: pool.submit(_meetings, s, counties) for y, s in spills.items()}
        meetings = {y: job.result() for y, job in jobs.items()}
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
    found: dict[int, list] = {}  # overlaps (policy error) of every tile, reported together
    parts: list[dict] = []
    for t, run in enumerate(runs):
        landuse, rings = {}, {}
        for y, spill in spills.items():
            landuse[y], read = spill.read(members[y][t])
            if read is not None:
                rings[y] = read
        mine = np.concatenate([groups[g] for g in run])
        landuse, identical, trees = check_overlaps(
            counties.iloc[np.sort(mine)], landuse, engine, policy, where, rings, found
        )
        if not (found or check_only):
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
                change_map=change_map,
                landuse_layers=landuse_layers,
            )
        del landuse, rings, identical, trees
        give_back_memory()
    if found:
        labels = where or {}
        raise InputError(
            [overlaps_problem(labels.get(y, f"landuse {y}"), found[y]) for y in sorted(found)]
        )
    return None if check_only else summed(parts, counties, transitions)


def _meetings(spill: Spill, counties: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The (polygon, county) pairs whose bounding boxes meet (touching counts, as in an STRtree
    query) — the candidates the zonal tasks and the overlap check take: spill positions and
    county positions, ascending by polygon."""
    county_boxes = shapely.bounds(np.asarray(counties.geometry.values))
    return box_pairs(spill.bounds, county_boxes)


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
