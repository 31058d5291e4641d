"""Exact coverage fractions of the pixels of a window by a polygon (numba): the signed-area scan
converter of font rasterizers — every edge adds the trapezoid it sweeps in each pixel it crosses,
and a prefix sum along each row gives every pixel's covered area exactly. Used by the raster
zonal stage's ``border: exact``; hand-written because it runs inside the per-block numba loop
(the tests compare it with GEOS pixel by pixel, and the raster areas with exactextract's).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["pixel_coverage"]


@numba.njit(nogil=True, cache=True, inline="always")
def _row(acc, r, lo, hi, dd, w):  # pragma: no cover
    """Add a piece of edge lying in pixel row r, from x = lo to x = hi (pixel units) with signed
    height dd, to the accumulation row: each part inside one pixel column j adds the covered
    share dd·(j+1−x̄) to column j and the rest to column j+1; parts left or right of the window
    are clamped onto its edge (they only shift the whole row, as the prefix sum expects)."""
    if hi - lo <= 0.0:
        xc = min(max(lo, 0.0), float(w))
        j = int(np.floor(xc))
        acc[r, j] += dd * (j + 1 - xc)
        acc[r, j + 1] += dd * (xc - j)
        return
    inv = dd / (hi - lo)
    a = lo
    while a < hi:
        if a < 0.0:
            b = min(hi, 0.0)
        elif a >= w:
            b = hi
        else:
            b = min(hi, np.floor(a) + 1.0)
        ca = min(max(a, 0.0), float(w))
        cb = min(max(b, 0.0), float(w))
        xm = 0.5 * (ca + cb)
        j = int(np.floor(xm))
        part = inv * (b - a)
        acc[r, j] += part * (j + 1 - xm)
        acc[r, j + 1] += part * (xm - j)
        a = b


@numba.njit(nogil=True, cache=True)
def pixel_coverage(xy, starts, ends, x0, y0, h, w):  # pragma: no cover
    """Exact covered fraction of every pixel of an h × w window (origin x0, y0 in pixel units)
    by the polygon whose rings are xy[starts[k]:ends[k]] (closed, consistently oriented)."""
    acc = np.zeros((h, w + 2))
    for k in range(starts.shape[0]):
        for i in range(starts[k], ends[k] - 1):
            xa = xy[i, 0] - x0
            ya = xy[i, 1] - y0
            xb = xy[i + 1, 0] - x0
            yb = xy[i + 1, 1] - y0
            if ya == yb:
                continue
            d = 1.0
            if ya > yb:
                xa, ya, xb, yb = xb, yb, xa, ya
                d = -1.0
            if yb <= 0.0 or ya >= h:
                continue
            slope = (xb - xa) / (yb - ya)
            r0 = max(int(np.floor(ya)), 0)
            r1 = min(int(np.ceil(yb)), h)
            for r in range(r0, r1):
                t0 = max(ya, float(r))
                t1 = min(yb, float(r + 1))
                if t1 <= t0:
                    continue
                xt0 = xa + (t0 - ya) * slope
                xt1 = xa + (t1 - ya) * slope
                _row(acc, r, min(xt0, xt1), max(xt0, xt1), (t1 - t0) * d, w)
    cov = np.empty((h, w))
    for i in range(h):
        s = 0.0
        for j in range(w):
            s += acc[i, j]
            cov[i, j] = abs(s)
    return cov
