"""Polygons as flat coordinate arrays for numba kernels: shapely's ragged layout (coordinates,
ring offsets, rings per geometry), every ring's orientation and every geometry's bounding box.

Used by :mod:`pipeline.intersection_area` (areas of intersections) and :mod:`pipeline.coverage`
(overlap screening), which both walk ring edges with the polygon's interior on the left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import shapely


@dataclass
class Rings:
    """``x``, ``y``: all coordinates, every ring closed (last point = first); ``ring_off``: ring
    ``r`` is coordinates ``ring_off[r] .. ring_off[r+1]``; ``geom_rings``: geometry ``g`` is rings
    ``geom_rings[g] .. geom_rings[g+1]``; ``sign``: +1 for a ring stored with its polygon's interior
    on the left (a counter-clockwise shell, a clockwise hole), −1 otherwise; ``bounds``: (n, 4)."""

    x: np.ndarray
    y: np.ndarray
    ring_off: np.ndarray
    geom_rings: np.ndarray
    sign: np.ndarray
    bounds: np.ndarray

    @classmethod
    def of(cls, geoms: np.ndarray) -> Rings:
        """``geoms``: an array of Polygons and MultiPolygons (empty ones allowed)."""
        kind, xy, offsets = shapely.to_ragged_array(geoms)
        if kind == shapely.GeometryType.POLYGON:  # one polygon per geometry
            ring_off, poly_off = offsets
            geom_off = np.arange(len(geoms) + 1)
        else:
            ring_off, poly_off, geom_off = offsets
        ring_off = ring_off.astype(np.int64)
        shell = np.zeros(len(ring_off) - 1, dtype=bool)
        shell[poly_off[:-1][np.diff(poly_off) > 0]] = True  # the first ring of every polygon
        x = np.ascontiguousarray(xy[:, 0])
        y = np.ascontiguousarray(xy[:, 1])
        return cls(
            x,
            y,
            ring_off,
            poly_off[geom_off].astype(np.int64),
            _ring_signs(x, y, ring_off, shell),
            shapely.bounds(geoms),
        )

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.x, self.y, self.ring_off, self.geom_rings, self.sign, self.bounds


@numba.njit(nogil=True, cache=True)
def _ring_signs(x, y, ring_off, shell):
    sign = np.ones(len(ring_off) - 1)
    for r in range(len(ring_off) - 1):
        twice = 0.0  # twice the signed area, about the ring's first point
        x0, y0 = x[ring_off[r]], y[ring_off[r]]
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            twice += (x[i] - x0) * (y[i + 1] - y0) - (x[i + 1] - x0) * (y[i] - y0)
        if (twice > 0) != shell[r]:
            sign[r] = -1.0
    return sign
