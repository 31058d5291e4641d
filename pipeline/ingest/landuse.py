"""The land use as ingest hands it on: one of three typed sources, so that a caller never has to
ask which of several fields is filled.

- :class:`InMemory`: vector years held as GeoDataFrames (``class_code``, geometry, in the run's
  equal-area CRS), with the :class:`~pipeline.geom.rings.Rings` of the polygons where they were
  read with them;
- :class:`Spilled`: vector years streamed to disk for a tiled run (:class:`~pipeline.ingest.spill.Spill`);
- :class:`Rasters`: raster years, the files and the CRS the catalog assigns them (pixels are read
  by the zonal stage).

:mod:`pipeline.zonal` picks its path by the variant (``match``/``isinstance``), nobody else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd

from pipeline.geom.rings import Rings
from pipeline.ingest.spill import Spill

__all__ = ["InMemory", "LandUse", "Rasters", "Spilled"]


@dataclass(frozen=True)
class InMemory:
    """Vector land use in memory: year → class_code, geometry (equal-area CRS)."""

    frames: dict[int, gpd.GeoDataFrame]
    #: year → the Rings of ``frames[year]``'s polygons, for the years read with them
    rings: dict[int, Rings] = field(default_factory=dict)

    def describe(self) -> dict[int, str]:
        """year → a short description for logs and ``ecovoucher validate``."""
        return {y: f"{len(g):,} polygons" for y, g in sorted(self.frames.items())}


@dataclass(frozen=True)
class Spilled:
    """Vector land use streamed to spill files, read back a tile at a time
    (:mod:`pipeline.zonal.tiles`)."""

    spills: dict[int, Spill]

    def describe(self) -> dict[int, str]:
        return {y: f"{s.n:,} polygons" for y, s in sorted(self.spills.items())}


@dataclass(frozen=True)
class Rasters:
    """Raster land use: year → GeoTIFF (or any single-band raster GDAL reads), and year → the
    catalog's ``crs:`` for the years that have one (it overrides the file's)."""

    paths: dict[int, Path]
    crs: dict[int, str] = field(default_factory=dict)

    def describe(self) -> dict[int, str]:
        return {y: f"raster {p.name}" for y, p in sorted(self.paths.items())}


LandUse = InMemory | Spilled | Rasters
