"""Areas of pairwise polygon intersections, without building the intersections.

One public function, :func:`intersection_areas`. The zonal stage needs ``area(a ∩ b)`` for some
hundred thousand (land-use polygon, county piece) pairs that cross a county boundary, but the
geometry of the intersection only for a few of them. GEOS builds every intersection polygon
(noding, a topology graph, rings: ~30–50 µs a pair); the area alone follows from the boundary by
Green's theorem and costs a few microseconds in a numba kernel:

    area(A ∩ B) = Σ over the parts of ∂A inside B  +  Σ over the parts of ∂B inside A

of ½ (x₀ y₁ − x₁ y₀) for each directed part (x₀, y₀) → (x₁, y₁), every ring oriented with its
polygon's interior on the left (shells counter-clockwise, holes clockwise; the kernel flips rings
that are stored the other way). An edge of A is cut where it properly crosses an edge of B; its
pieces alternate between inside and outside B, starting from whether its first point is inside.

Exactness: this holds when the two boundaries cross properly. Where a vertex of one polygon lies
on (within ``DEGENERATE_M`` of) the other's boundary, or edges run along each other — a land-use
layer clipped with the same county layer, say — the kernel does not guess: it marks the pair and
GEOS computes that pair's area instead (first testing whether the interiors meet at all: such
pairs are mostly neighbours that only touch). Results agree with GEOS to ~1e-12 relative (tests).
"""

from __future__ import annotations

import numba
import numpy as np
import shapely

from pipeline.rings import Rings

#: a vertex closer than this (metres) to the other polygon's boundary makes the pair "degenerate":
#: its area is left to GEOS. Rounding in the kernel is ~1e-11 m at national coordinates.
DEGENERATE_M = 1e-6

_POLYGONAL = (3, 6)  # Polygon, MultiPolygon


def intersection_areas(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """``area(a[ia[k]] ∩ b[ib[k]])`` for every k, in the units² of the coordinates.

    ``a`` and ``b``: arrays of valid shapely (Multi)Polygons (other geometry types are left to
    GEOS); ``ia``, ``ib``: equal-length index arrays. Exact up to rounding: pairs whose boundaries
    touch or run along each other are computed by GEOS (see the module docstring).
    """
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    out = np.zeros(len(ia), dtype=np.float64)
    if not len(ia):
        return out
    ua, ra = np.unique(ia, return_inverse=True)
    ub, rb = np.unique(ib, return_inverse=True)
    ga, gb = a[ua], b[ub]
    ok_a = np.isin(shapely.get_type_id(ga), _POLYGONAL) & ~shapely.is_empty(ga)
    ok_b = np.isin(shapely.get_type_id(gb), _POLYGONAL) & ~shapely.is_empty(gb)
    fast = ok_a[ra] & ok_b[rb]
    degenerate = ~fast
    if fast.any():
        pa, pb = (
            Rings.of(np.where(ok_a, ga, shapely.Polygon())),
            Rings.of(np.where(ok_b, gb, shapely.Polygon())),
        )
        k = np.flatnonzero(fast)
        areas, flags = _pair_areas(*pa.arrays(), *pb.arrays(), ra[k], rb[k])
        out[k] = areas
        degenerate[k] = flags
    if degenerate.any():
        k = np.flatnonzero(degenerate)
        # most such pairs are neighbours that only touch: the DE-9IM test (interiors sharing an
        # area) is ~3× cheaper than the intersection, which only the others then need
        k = k[shapely.relate_pattern(a[ia[k]], b[ib[k]], "2********")]
        out[k] = shapely.area(shapely.intersection(a[ia[k]], b[ib[k]]))
    return out


@numba.njit(nogil=True, cache=True)
def _pair_areas(
    ax, ay, a_ring, a_geom, a_sign, a_box, bx, by, b_ring, b_geom, b_sign, b_box, ia, ib
):
    areas = np.zeros(len(ia))
    degenerate = np.zeros(len(ia), dtype=np.bool_)
    for k in range(len(ia)):
        p, q = ia[k], ib[k]
        areas[k], degenerate[k] = _pair_area(
            ax, ay, a_ring, a_geom[p], a_geom[p + 1], a_sign, a_box[p],
            bx, by, b_ring, b_geom[q], b_geom[q + 1], b_sign, b_box[q],
        )  # fmt: skip
    return areas, degenerate


@numba.njit(nogil=True, cache=True, inline="always")
def _overlaps(x0, y0, x1, y1, box, eps):
    """Does the box of segment (x0, y0)–(x1, y1) meet ``box`` (xmin, ymin, xmax, ymax) ± eps?"""
    return not (
        max(x0, x1) < box[0] - eps
        or min(x0, x1) > box[2] + eps
        or max(y0, y1) < box[1] - eps
        or min(y0, y1) > box[3] + eps
    )


@numba.njit(nogil=True, cache=True)
def _edges_near(x, y, ring_off, r0, r1, box, eps):
    """Start indices of the edges of rings r0..r1 whose boxes meet ``box``, and each one's ring."""
    n = 0
    for r in range(r0, r1):
        n += ring_off[r + 1] - ring_off[r] - 1
    idx = np.empty(n, dtype=np.int64)
    ring = np.empty(n, dtype=np.int64)
    m = 0
    for r in range(r0, r1):
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            if _overlaps(x[i], y[i], x[i + 1], y[i + 1], box, eps):
                idx[m] = i
                ring[m] = r
                m += 1
    return idx[:m], ring[:m]


@numba.njit(nogil=True, cache=True)
def _inside(px, py, x, y, ring_off, r0, r1, ox, oy):
    """Is (px, py) (shifted by −(ox, oy)) inside the polygon of rings r0..r1? Crossing number."""
    inside = False
    for r in range(r0, r1):
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            cy, dy = y[i] - oy, y[i + 1] - oy
            if (cy > py) != (dy > py):
                cx, dx = x[i] - ox, x[i + 1] - ox
                if px < cx + (py - cy) * (dx - cx) / (dy - cy):
                    inside = not inside
    return inside


@numba.njit(nogil=True, cache=True)
def _pair_area(
    ax, ay, a_ring, ar0, ar1, a_sign, abox, bx, by, b_ring, br0, br1, b_sign, bbox
):  # fmt: skip
    """Area of A ∩ B (A: rings ar0..ar1, B: rings br0..br1) and whether the pair is degenerate."""
    eps = DEGENERATE_M
    if abox[2] < bbox[0] or bbox[2] < abox[0] or abox[3] < bbox[1] or bbox[3] < abox[1]:
        return 0.0, False
    ox, oy = abox[0], abox[1]  # local origin: small coordinates, small rounding
    ea, _ = _edges_near(ax, ay, a_ring, ar0, ar1, bbox, eps)
    eb, rb = _edges_near(bx, by, b_ring, br0, br1, abox, eps)
    na, nb = len(ea), len(eb)
    # every proper crossing: (A edge, B edge, parameter along the A edge, along the B edge)
    cap = 16
    ci = np.empty(cap, dtype=np.int64)
    cj = np.empty(cap, dtype=np.int64)
    ct = np.empty(cap)
    cu = np.empty(cap)
    nc = 0
    for i in range(na):
        e = ea[i]
        x0, y0, x1, y1 = ax[e] - ox, ay[e] - oy, ax[e + 1] - ox, ay[e + 1] - oy
        lab = np.hypot(x1 - x0, y1 - y0)
        if lab == 0.0:
            continue
        for j in range(nb):
            f = eb[j]
            x2, y2, x3, y3 = bx[f] - ox, by[f] - oy, bx[f + 1] - ox, by[f + 1] - oy
            if (
                max(x0, x1) < min(x2, x3) - eps
                or max(x2, x3) < min(x0, x1) - eps
                or max(y0, y1) < min(y2, y3) - eps
                or max(y2, y3) < min(y0, y1) - eps
            ):
                continue
            lcd = np.hypot(x3 - x2, y3 - y2)
            if lcd == 0.0:
                continue
            d1 = (x3 - x2) * (y0 - y2) - (y3 - y2) * (x0 - x2)  # A's ends against B's line
            d2 = (x3 - x2) * (y1 - y2) - (y3 - y2) * (x1 - x2)
            d3 = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)  # B's ends against A's line
            d4 = (x1 - x0) * (y3 - y0) - (y1 - y0) * (x3 - x0)
            near = eps * lcd
            if abs(d1) <= near or abs(d2) <= near:
                return 0.0, True
            near = eps * lab
            if abs(d3) <= near or abs(d4) <= near:
                return 0.0, True
            if (d1 > 0) != (d2 > 0) and (d3 > 0) != (d4 > 0):
                if nc == cap:
                    cap *= 2
                    ci, cj, ct, cu = _grow(ci, cap), _grow(cj, cap), _grow(ct, cap), _grow(cu, cap)
                ci[nc], cj[nc] = i, j
                ct[nc], cu[nc] = d1 / (d1 - d2), d3 / (d3 - d4)
                nc += 1
    twice = 0.0
    # A's boundary inside B: walk each ring in order so that "inside" carries from edge to edge
    k = 0
    for r in range(ar0, ar1):
        status = -1  # unknown at the ring's start
        for e in range(a_ring[r], a_ring[r + 1] - 1):
            if k >= na or ea[k] != e:  # an edge away from B's box: it ends outside B
                status = 0
                continue
            x0, y0, x1, y1 = ax[e] - ox, ay[e] - oy, ax[e + 1] - ox, ay[e + 1] - oy
            if status == -1:
                status = 0
                if _overlaps(ax[e], ay[e], ax[e], ay[e], bbox, 0.0) and _inside(
                    x0, y0, bx, by, b_ring, br0, br1, ox, oy
                ):
                    status = 1
            ts = _params_of(k, ci, ct, nc)
            twice += a_sign[r] * _inside_parts(x0, y0, x1, y1, ts, status)
            status ^= len(ts) & 1
            k += 1
    # B's boundary inside A: only edges meeting A's box can be; each one's start is tested
    for j in range(nb):
        f = eb[j]
        x0, y0, x1, y1 = bx[f] - ox, by[f] - oy, bx[f + 1] - ox, by[f + 1] - oy
        status = 0
        if _overlaps(bx[f], by[f], bx[f], by[f], abox, 0.0) and _inside(
            x0, y0, ax, ay, a_ring, ar0, ar1, ox, oy
        ):
            status = 1
        us = _params_of(j, cj, cu, nc)
        twice += b_sign[rb[j]] * _inside_parts(x0, y0, x1, y1, us, status)
    return twice / 2.0, False


@numba.njit(nogil=True, cache=True)
def _grow(arr, cap):
    out = np.empty(cap, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


@numba.njit(nogil=True, cache=True)
def _params_of(edge, owner, param, n):
    """The crossing parameters of one edge, sorted."""
    m = 0
    for c in range(n):
        if owner[c] == edge:
            m += 1
    out = np.empty(m)
    m = 0
    for c in range(n):
        if owner[c] == edge:
            out[m] = param[c]
            m += 1
    out.sort()
    return out


@numba.njit(nogil=True, cache=True)
def _inside_parts(x0, y0, x1, y1, ts, status):
    """Twice the signed area term Σ (xₛ yₑ − xₑ yₛ) of the parts of the segment that are inside,
    the segment being cut at ``ts`` and starting inside when ``status`` is 1."""
    total = 0.0
    t0 = 0.0
    for c in range(len(ts) + 1):
        t1 = ts[c] if c < len(ts) else 1.0
        if status:
            xs, ys = x0 + t0 * (x1 - x0), y0 + t0 * (y1 - y0)
            xe, ye = x0 + t1 * (x1 - x0), y0 + t1 * (y1 - y0)
            total += xs * ye - xe * ys
        status ^= 1
        t0 = t1
    return total
