"""The zonal stage's one entry point, :func:`measure`: the only place that chooses between the
vector path in memory (:func:`~pipeline.zonal.overlaps.check_overlaps`, then
:func:`~pipeline.zonal.vector.zonal_areas`), the tiled path
(:func:`~pipeline.zonal.tiles.tiled_zonal_areas`) and the raster path
(:func:`~pipeline.zonal.raster.raster_zonal_areas`) — by the type of ``inputs.landuse`` — and
that builds the resume cache's fingerprint. ``ecovoucher validate`` calls it with
``check_only=True``: the same checks, no areas.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pipeline import __version__
from pipeline.errors import InputError, Problem
from pipeline.ingest.grids import open_grid
from pipeline.ingest.inputs import Inputs
from pipeline.ingest.landuse import InMemory, Rasters, Spilled
from pipeline.runtime.engine import Engine
from pipeline.runtime.resume import PartitionCache
from pipeline.settings.catalog import Catalog
from pipeline.settings.config import Config
from pipeline.zonal.labels import in_legend_codes
from pipeline.zonal.overlaps import check_overlaps
from pipeline.zonal.raster import check_raster_values, raster_zonal_areas
from pipeline.zonal.tiles import TilePlan, tiled_zonal_areas
from pipeline.zonal.vector import PARTITION_SIZE, ZONAL_FORMAT, ZonalResult, zonal_areas

__all__ = ["Resume", "measure"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resume:
    """Keep finished partitions under ``out_dir/.ecovoucher-cache`` and reuse them when the same
    inputs and settings run again (:class:`~pipeline.runtime.resume.PartitionCache`); ``force``:
    delete that cache first and recompute everything."""

    out_dir: Path
    force: bool = False


def measure(
    inputs: Inputs,
    catalog: Catalog,
    config: Config,
    engine: Engine,
    resume: Resume | None = None,
    plan: TilePlan | None = None,
    *,
    partition_size: int = PARTITION_SIZE,
    check_only: bool = False,
    change_tif: Path | None = None,
) -> ZonalResult | None:
    """Per-county, per-class areas of both years and the base → target transfer matrix, by the
    path ``inputs.landuse`` calls for; overlapping land-use polygons are an error or resolved
    (``config.landuse_overlaps``) first.

    ``resume``: the cache of finished partitions (None: none); ``plan``: the tiles of a spilled
    run (:func:`~pipeline.zonal.tiles.tile_plan`); ``partition_size``: counties per parallel task.
    Class codes are those of each year's legend (:func:`~pipeline.zonal.labels.in_legend_codes`).
    ``check_only``: run the checks only — the overlap check (always as an error), for rasters
    their CRS, georeferencing and block table and every pixel against the year's legend — and
    return None (``ecovoucher validate``). ``change_tif``: where raster land use writes the change
    GeoTIFF when ``config.outputs.landuse_change`` asks for the change map."""
    labels = {y: f"landuse {y} ({e.path})" for y, e in catalog.datasets.landuse.items()}
    plan = plan or TilePlan()
    if check_only:
        _check(inputs, catalog, engine, plan, labels)
        return None
    cache = _cache(inputs, catalog, config, partition_size, resume) if resume else None
    log.info("zonal: running on %s", engine.describe())
    result = _measure(
        inputs, catalog, config, engine, plan, labels, partition_size, cache, change_tif
    )
    result = in_legend_codes(result, catalog.legends(), (config.years.base, config.years.target))
    _check_covered(result, inputs, catalog, config)
    return result


def _measure(
    inputs: Inputs,
    catalog: Catalog,
    config: Config,
    engine: Engine,
    plan: TilePlan,
    labels: dict[int, str],
    partition_size: int,
    cache: PartitionCache | None,
    change_tif: Path | None = None,
) -> ZonalResult:
    years = (config.years.base, config.years.target)
    landuse = inputs.landuse
    change_map = config.outputs.landuse_change
    if isinstance(landuse, Rasters):
        return raster_zonal_areas(
            inputs.counties,
            landuse.paths,
            engine,
            transitions=years,
            border=config.raster_border,
            cache_dir=cache.folder / "rasters" if cache else None,
            raster_crs=landuse.crs,
            legends=catalog.legends(),
            change_map=change_map,
            change_tif=change_tif if change_map else None,
            landuse_layers=config.outputs.landuse,
        )
    if isinstance(landuse, Spilled):
        return tiled_zonal_areas(
            inputs.counties,
            landuse.spills,
            engine,
            plan,
            config.landuse_overlaps,
            labels,
            years,
            partition_size,
            cache,
            change_map=change_map,
            landuse_layers=config.outputs.landuse,
        )
    frames, identical, trees = check_overlaps(
        inputs.counties,
        landuse.frames,
        engine,
        config.landuse_overlaps,
        labels,
        rings=landuse.rings,
    )
    return zonal_areas(
        inputs.counties,
        frames,
        engine,
        transitions=years,
        partition_size=partition_size,
        cache=cache,
        identical=identical,
        trees=trees,
        change_map=change_map,
        landuse_layers=config.outputs.landuse,
    )


def _check(
    inputs: Inputs, catalog: Catalog, engine: Engine, plan: TilePlan, labels: dict[int, str]
) -> None:
    landuse = inputs.landuse
    if isinstance(landuse, Spilled):
        years = list(landuse.spills)
        tiled_zonal_areas(
            inputs.counties, landuse.spills, engine, plan, "error", labels, check_only=True
        )
    elif isinstance(landuse, InMemory):
        years = list(landuse.frames)
        check_overlaps(
            inputs.counties, landuse.frames, engine, "error", labels, rings=landuse.rings
        )
    else:  # CRS, georeferencing, block table
        years = list(landuse.paths)
        for year, path in landuse.paths.items():
            open_grid(year, path, landuse.crs.get(year))
    # every pixel of every raster file against the legend (a raster year beside a vector year
    # too: it was polygonized only over the counties)
    legends = catalog.legends()
    for year in years:
        entry = catalog.datasets.landuse[year]
        if entry.format == "raster":
            for tile in entry.all_files:  # each file, by its own name
                check_raster_values(year, tile, entry.crs, legends[year])


def _check_covered(result: ZonalResult, inputs: Inputs, catalog: Catalog, config: Config) -> None:
    """A land-use year that covers none of the study area is a wrong file or a wrong CRS, not a
    county that lost all its land: stop, naming the file."""
    class_areas = result.class_areas
    problems = []
    for year in (config.years.base, config.years.target):
        if not (class_areas["year"] == year).any():
            entry = catalog.datasets.landuse[year]
            bounds = inputs.counties.total_bounds.round(0)
            problems.append(
                Problem(
                    f"landuse {year} ({entry.path})",
                    f"covers none of the {len(inputs.counties)} counties of the study area "
                    f"(counties' extent in the equal-area CRS: {bounds.tolist()}). Is it the "
                    "right region, and is its CRS right (its .prj, or 'crs:' in the catalog)?",
                )
            )
    if problems:
        raise InputError(problems)


def _cache(
    inputs: Inputs, catalog: Catalog, config: Config, partition_size: int, resume: Resume
) -> PartitionCache:
    """The resume cache, keyed by everything the areas depend on."""
    years = (config.years.base, config.years.target)
    fingerprint = {
        "inputs": inputs.checksums,
        # how the files are read (code field, layer, crs, encoding) changes the areas too
        "counties": catalog.datasets.counties.model_dump(mode="json"),
        "landuse": {str(y): catalog.datasets.landuse[y].model_dump(mode="json") for y in years},
        "equal_area_crs": config.equal_area_crs,
        "study_area": config.study_area.model_dump(),
        "years": years,
        "landuse_overlaps": config.landuse_overlaps,
        "partition_size": partition_size,
        "ecovoucher": __version__,
        "zonal_format": ZONAL_FORMAT,
    }
    return PartitionCache.for_run(resume.out_dir, fingerprint, force=resume.force)
