"""Stage 2 — ingest: the input files read, checked and brought to the run's equal-area CRS as
one :class:`Inputs` (:func:`ingest`): vector reading with its encodings, geometry repair and
reprojection, the counties and the study area, the land use (in memory, or spilled to disk for a
tiled run), the statistics CSV, and raster grids (:func:`open_grid`, no pixels read)."""

from pipeline.ingest.grids import Grid, describe_grid, open_grid
from pipeline.ingest.inputs import Inputs, county_overlaps, ingest
from pipeline.ingest.spill import Spill, SpillWriter

__all__ = [
    "Grid",
    "Inputs",
    "Spill",
    "SpillWriter",
    "county_overlaps",
    "describe_grid",
    "ingest",
    "open_grid",
]
