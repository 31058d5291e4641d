"""Stage 2 — ingest: the input files read, checked and brought to the run's equal-area CRS as
one :class:`Inputs` (:func:`ingest`), the land use as one of three typed sources
(:class:`InMemory`, :class:`Spilled`, :class:`Rasters`): vector reading with its encodings, geometry repair and
reprojection, the counties and the study area, the land use (in memory, or spilled to disk for a
tiled run), the statistics CSV, and raster grids (:func:`open_grid`, no pixels read; a year of
several files on one pixel lattice joined by :mod:`~pipeline.ingest.mosaic`, a raster year
against a vector year polygonized by :mod:`~pipeline.ingest.polygonize`)."""

from pipeline.ingest.counties import county_overlaps
from pipeline.ingest.grids import Grid, describe_grid, open_grid
from pipeline.ingest.inputs import Inputs, PendingNotes, ingest
from pipeline.ingest.landuse import InMemory, LandUse, Rasters, Spilled
from pipeline.ingest.spill import Spill, SpillWriter

__all__ = [
    "Grid",
    "InMemory",
    "Inputs",
    "LandUse",
    "PendingNotes",
    "Rasters",
    "Spill",
    "SpillWriter",
    "Spilled",
    "county_overlaps",
    "describe_grid",
    "ingest",
    "open_grid",
]
