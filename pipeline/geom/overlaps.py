"""Which polygons of one layer overlap, and by how much: candidate pairs from shapely's STRtree,
areas shared by their interiors from :func:`~pipeline.geom.intersection_area.intersection_areas`.

Used by the land-use overlap check (:mod:`pipeline.zonal.overlaps`) and by ingest's warning about
overlapping counties; the tables (pandas) are built there from :func:`overlap_pairs`' columns.
"""

from __future__ import annotations

import numpy as np
import shapely

from pipeline.geom.intersection_area import intersection_areas
from pipeline.geom.overlap_screen import overlap_suspects

__all__ = [
    "OVERLAP_TOLERANCE_HA",
    "neighbour_pairs",
    "overlap_pairs",
    "overlapping_pairs",
    "polygon_overlaps",
]

#: overlaps smaller than this (hm², i.e. 1 m²) are digitizing noise and are ignored
OVERLAP_TOLERANCE_HA = 1e-4


def neighbour_pairs(
    geoms: np.ndarray, flagged: np.ndarray, tree: shapely.STRtree | None = None
) -> np.ndarray:
    """Each (a, b), a < b, of a flagged polygon and a polygon whose bounding box meets it, once."""
    i, j = (tree or shapely.STRtree(geoms)).query(geoms[flagged])
    a, b = np.minimum(flagged[i], j), np.maximum(flagged[i], j)
    key = np.unique(a[a < b] * len(geoms) + b[a < b])  # one int64 per pair: a fast unique
    return np.stack([key // len(geoms), key % len(geoms)], axis=1)


def overlapping_pairs(
    geoms: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs (a[k], b[k]) whose interiors share an area, and that area (m²)."""
    area = intersection_areas(geoms, geoms, a, b)
    hit = area > 0
    return a[hit], b[hit], area[hit]


def overlap_pairs(found: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, object]:
    """The columns ``first``, ``second``, ``area_ha`` of the pairs in ``found`` (as returned by
    :func:`overlapping_pairs`) that overlap by more than :data:`OVERLAP_TOLERANCE_HA`, sorted by
    ``first``, then ``second``; empty lists when nothing was found."""
    if not found:
        return {"first": [], "second": [], "area_ha": []}
    a = np.concatenate([f[0] for f in found])
    b = np.concatenate([f[1] for f in found])
    area = np.concatenate([f[2] for f in found]) / 1e4  # m² → hm²
    keep = area > OVERLAP_TOLERANCE_HA
    a, b, area = a[keep], b[keep], area[keep]
    order = np.lexsort((b, a))  # stable, as pandas' sort_values on the two columns
    return {"first": a[order], "second": b[order], "area_ha": area[order]}


def polygon_overlaps(geoms: np.ndarray) -> dict[str, object]:
    """All overlapping pairs of ``geoms`` (positions), as :func:`overlap_pairs`: the edge screen
    (:func:`~pipeline.geom.overlap_screen.overlap_suspects`), then pair tests of the suspects
    against their neighbours. For small layers (the counties); the land-use check follows
    overlaps further and runs on the engine (:func:`pipeline.zonal.overlaps.check_overlaps`)."""
    flagged = overlap_suspects(geoms)
    if not len(flagged):
        return overlap_pairs([])
    ab = neighbour_pairs(geoms, flagged)
    return overlap_pairs([overlapping_pairs(geoms, ab[:, 0], ab[:, 1])])
