"""Do a file's coordinates fit the CRS it declares? Checked before any densifying or reprojection.

A ``.prj`` (or the catalog's ``crs:``) that says degrees over coordinates in metres makes every
number a "longitude" of a million degrees: densifying edges to 0.001° then cuts each into billions
of pieces, and the run grows until the machine runs out of memory. The check is on the bounding
box alone (pyproj only, no geometry work):

- a geographic CRS: longitudes must lie within −180…360 (some data sets use 0…360) and latitudes
  within −90…90;
- a projected CRS: the box must lie within the world as that CRS draws it — the CRS's area of use
  (pyproj) projected, widened by half its size on every side and by at least 1,000 km, or, for a
  CRS without an area of use (custom WKT such as RESDC's Albers), within 40,000 km of the origin
  (no point of the Earth is farther in any map projection in metres).
"""

from __future__ import annotations

import math

import numpy as np
from pyproj import CRS, Transformer

__all__ = ["coordinates_misfit"]

#: no projected coordinate of a point of the Earth is farther from the origin (metres)
EARTH_REACH_M = 4.0e7
#: an area of use is widened by at least this much (metres) before data are called outside it
AREA_MARGIN_M = 1.0e6


def coordinates_misfit(bounds: np.ndarray | tuple[float, ...], crs: CRS | None) -> str | None:
    """None when the box ``(xmin, ymin, xmax, ymax)`` is plausible in ``crs``; else what is
    wrong, with the fix (a sentence for an :class:`~pipeline.errors.InputError`)."""
    if crs is None:
        return None
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
        return None  # empty or all-missing: reported elsewhere
    box = f"x {xmin:,.6g} … {xmax:,.6g}, y {ymin:,.6g} … {ymax:,.6g}"
    fix = (
        "Is the declared CRS right? Check the file's .prj, or set 'crs:' in the catalog to the "
        "CRS the coordinates are in (RESDC land use is in metres, Albers)."
    )
    if crs.is_geographic:
        if xmin >= -180.0 and xmax <= 360.0 and ymin >= -90.0 and ymax <= 90.0:
            return None
        return (
            f"coordinates ({box}) are not longitudes and latitudes in degrees, but the file's CRS "
            f"({crs.name}) says they are. {fix}"
        )
    unit = _metres_per_unit(crs)
    reach = EARTH_REACH_M / unit
    if max(abs(xmin), abs(xmax), abs(ymin), abs(ymax)) > reach:
        return (
            f"coordinates ({box}) lie farther from the origin than any point of the Earth in "
            f"{crs.name}. {fix}"
        )
    area = _area_of_use(crs)
    if area is not None:
        ax0, ay0, ax1, ay1 = area
        margin_x = max((ax1 - ax0) / 2, AREA_MARGIN_M / unit)
        margin_y = max((ay1 - ay0) / 2, AREA_MARGIN_M / unit)
        if (
            xmax < ax0 - margin_x
            or xmin > ax1 + margin_x
            or ymax < ay0 - margin_y
            or (ymin > ay1 + margin_y)
        ):
            return (
                f"coordinates ({box}) are nowhere near where {crs.name} is used "
                f"(x {ax0:,.0f} … {ax1:,.0f}, y {ay0:,.0f} … {ay1:,.0f}). {fix}"
            )
    return None


def _metres_per_unit(crs: CRS) -> float:
    try:
        factor = crs.axis_info[0].unit_conversion_factor
    except (IndexError, AttributeError):
        return 1.0
    return factor if factor and math.isfinite(factor) and factor > 0 else 1.0


def _area_of_use(crs: CRS) -> tuple[float, float, float, float] | None:
    """The CRS's area of use in its own coordinates, or None where it has none or it cannot be
    projected."""
    aou = crs.area_of_use
    if aou is None:
        return None
    try:
        t = Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)
        west, south, east, north = aou.bounds
        if east < west:  # crosses the antimeridian: no simple box
            return None
        box = t.transform_bounds(west, south, east, north, densify_pts=21)
    except Exception:  # pyproj raises several kinds for an area it cannot project
        return None
    return box if all(math.isfinite(v) for v in box) else None
