"""CRS helpers (pyproj): is a projection equal-area, do two CRSs give the same coordinates."""

from __future__ import annotations

import numpy as np
from pyproj import CRS, Transformer

__all__ = ["EQUAL_AREA_METHODS", "is_equal_area", "same_coordinates"]

#: pyproj projection-method names (lower case) of equal-area projections
EQUAL_AREA_METHODS = (
    "equal area",  # Albers, Lambert azimuthal / cylindrical equal area
    "mollweide",
    "sinusoidal",
    "equal earth",
    "eckert ii",
    "eckert iv",
    "eckert vi",
    "goode homolosine",
    "quartic authalic",
    "bonne",
)


def is_equal_area(crs: CRS) -> bool:
    """Whether a projected CRS preserves areas (by its projection method's name)."""
    op = crs.coordinate_operation
    name = (op.method_name if op else "").lower()
    return any(m in name for m in EQUAL_AREA_METHODS)


def same_coordinates(src: CRS, dst: CRS, bounds: np.ndarray) -> bool:
    """Whether ``src`` and ``dst`` give the same coordinates (within 1 mm) over ``bounds``
    (xmin, ymin, xmax, ymax in ``src``): the same CRS, or two definitions of one projection."""
    if src.equals(dst):
        return True
    if src.is_geographic or not np.all(np.isfinite(bounds)):
        return False
    x = np.linspace(bounds[0], bounds[2], 7)
    y = np.linspace(bounds[1], bounds[3], 7)
    xx, yy = (a.ravel() for a in np.meshgrid(x, y))
    tx, ty = Transformer.from_crs(src, dst, always_xy=True).transform(xx, yy)
    return bool(np.nanmax(np.hypot(tx - xx, ty - yy)) < 1e-3)
