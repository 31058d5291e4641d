"""Stage 3 — zonal: each county's area of every land-use class per year, and the base → target
transfer matrix. The entry point is :func:`measure`, which picks the path by the land use ingest
handed on: vector land use in memory (:func:`zonal_areas`, after the overlap check
:func:`check_overlaps`), spilled land use a tile of counties at a time (:func:`tiled_zonal_areas`,
planned by :func:`tile_plan`), or raster land use (:func:`raster_zonal_areas`). All return a
:class:`ZonalResult`."""

from pipeline.zonal.measure import Resume, measure
from pipeline.zonal.overlaps import check_overlaps, overlaps_problem
from pipeline.zonal.raster import raster_zonal_areas
from pipeline.zonal.tiles import TilePlan, tile_plan, tiled_zonal_areas
from pipeline.zonal.vector import PARTITION_SIZE, ZONAL_FORMAT, ZonalResult, zonal_areas

__all__ = [
    "PARTITION_SIZE",
    "ZONAL_FORMAT",
    "Resume",
    "TilePlan",
    "ZonalResult",
    "check_overlaps",
    "measure",
    "overlaps_problem",
    "raster_zonal_areas",
    "tile_plan",
    "tiled_zonal_areas",
    "zonal_areas",
]
