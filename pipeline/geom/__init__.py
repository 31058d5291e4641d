"""Array kernels on polygons, with no pandas and no settings: rings and their hashes (numba),
the overlap screen, boundary (intersection) areas, pixel coverage fractions, bounding-box
pairs, identical polygons across years, which polygons overlap, cell areas of grids, and CRS
helpers. Every stage may use them; they use no stage."""

from pipeline.geom.boxes import box_pairs
from pipeline.geom.crs import is_equal_area, same_coordinates
from pipeline.geom.identical import identical_polygons
from pipeline.geom.intersection_area import intersection_areas
from pipeline.geom.overlap_screen import overlap_suspects
from pipeline.geom.overlaps import (
    OVERLAP_TOLERANCE_HA,
    neighbour_pairs,
    overlap_pairs,
    overlapping_pairs,
    polygon_overlaps,
)
from pipeline.geom.pixel_coverage import pixel_coverage
from pipeline.geom.rings import Rings

__all__ = [
    "OVERLAP_TOLERANCE_HA",
    "Rings",
    "box_pairs",
    "identical_polygons",
    "intersection_areas",
    "is_equal_area",
    "neighbour_pairs",
    "overlap_pairs",
    "overlap_suspects",
    "overlapping_pairs",
    "pixel_coverage",
    "polygon_overlaps",
    "same_coordinates",
]
