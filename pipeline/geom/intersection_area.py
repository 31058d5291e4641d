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
on (within ``DEGENERATE_M`` of) the other's boundary, or edges run along each other — neighbours
in one layer, a polygon and its successor in a later year's map, a land-use layer clipped with
the same county layer — a second kernel takes the pair: every edge is cut wherever the other
boundary crosses it or has a vertex on it, and each piece between cuts is wholly inside, outside
or along the other boundary. Pieces along it count once, from A's side, where both interiors lie
on the same side (the boundary of A ∩ B runs there); neighbours that only touch thus get exactly
0. Boundaries within DEGENERATE_M of each other are taken as one line: the area between them, at
most DEGENERATE_M × their length, is not counted (RESDC boundaries share their vertices exactly,
so it is rounding). A piece that comes nearer than ``GRAY_M`` to the other boundary without
being along it is too close to call, and GEOS computes that pair (first testing whether the
interiors meet at all). Results agree with GEOS to 1e-9 relative or better (tests).
"""

from __future__ import annotations

import numba
import numpy as np
import shapely

from pipeline.geom.rings import Rings, boxes_apart

#: a vertex closer than this (metres) to the other polygon's boundary makes the pair "degenerate":
#: the touching kernel takes it, which treats boundaries this close as one line. Rounding in the
#: kernels is ~1e-11 m at national coordinates.
DEGENERATE_M = 1e-6
#: a piece of boundary this close to the other boundary, but not within DEGENERATE_M, is too close
#: to call: GEOS computes the pair
GRAY_M = 10 * DEGENERATE_M
#: pieces of an edge shorter than this (metres) between two cuts are rounding around one contact
#: point, and are classified as they come (their area term is below 1e-8 m × the pair's extent)
TINY_M = 1e-8

#: pairs whose vertex counts multiply to more than this go to GEOS: the kernels test edges
#: against edges (near each other), GEOS nodes in O(n log n). Two neighbouring counties of
#: ~1,500 vertices each: kernels ~1 ms, GEOS ~0.25 ms; land use (~7 vertices) against a county
#: piece (≤ 256): kernels ~3 µs, GEOS ~30 µs
MAX_KERNEL_WORK = 100_000

_POLYGONAL = (3, 6)  # Polygon, MultiPolygon


def intersection_areas(
    a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray, within: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``area(a[ia[k]] ∩ b[ib[k]])`` for every k, in the units² of the coordinates; with
    ``within``, also whether ``a[ia[k]]`` lies in the interior of ``b[ib[k]]`` (True only where the
    crossing kernel shows it: no contact between the boundaries; False is "no, or not shown").

    ``a`` and ``b``: arrays of valid shapely (Multi)Polygons (other geometry types, and pairs of
    large polygons, see MAX_KERNEL_WORK, are left to GEOS); ``ia``, ``ib``: equal-length index
    arrays. Exact up to rounding and to boundaries closer than DEGENERATE_M, which count as one
    line (see the module docstring).
    """
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    out = np.zeros(len(ia), dtype=np.float64)
    inside = np.zeros(len(ia), dtype=bool)
    if not len(ia):
        return (out, inside) if within else out
    ua, ra = np.unique(ia, return_inverse=True)
    ub, rb = np.unique(ib, return_inverse=True)
    ga, gb = a[ua], b[ub]
    ok_a = np.isin(shapely.get_type_id(ga), _POLYGONAL) & ~shapely.is_empty(ga)
    ok_b = np.isin(shapely.get_type_id(gb), _POLYGONAL) & ~shapely.is_empty(gb)
    size_a = shapely.get_num_coordinates(ga).astype(np.float64)
    size_b = shapely.get_num_coordinates(gb).astype(np.float64)
    fast = ok_a[ra] & ok_b[rb] & (size_a[ra] * size_b[rb] <= MAX_KERNEL_WORK)
    degenerate = ~fast
    if fast.any():
        pa, pb = (
            Rings.of(np.where(ok_a, ga, shapely.Polygon())),
            Rings.of(np.where(ok_b, gb, shapely.Polygon())),
        )
        k = np.flatnonzero(fast)
        areas, flags, inside[k] = _pair_areas(*pa.arrays(), *pb.arrays(), ra[k], rb[k])
        out[k] = areas
        k = k[flags]  # boundaries that touch or run along each other: cut at every contact
        areas, ok = _touching_pair_areas(*pa.arrays(), *pb.arrays(), ra[k], rb[k])
        out[k] = areas
        degenerate[k[~ok]] = True
    if degenerate.any():
        k = np.flatnonzero(degenerate)
        # most such pairs are neighbours that only touch: the DE-9IM test (interiors sharing an
        # area) is ~3× cheaper than the intersection, which only the others then need
        k = k[shapely.relate_pattern(a[ia[k]], b[ib[k]], "2********")]
        out[k] = shapely.area(shapely.intersection(a[ia[k]], b[ib[k]]))
    return (out, inside) if within else out


@numba.njit(nogil=True, cache=True)
def _pair_areas(
    ax, ay, a_ring, a_geom, a_sign, a_box, bx, by, b_ring, b_geom, b_sign, b_box, ia, ib
):
    """:func:`_pair_area` of every pair: the areas, which pairs are degenerate and which A lies
    in B's interior. Work arrays are allocated once, for the largest polygon, and grown when a
    pair has more crossings."""
    areas = np.zeros(len(ia))
    degenerate = np.zeros(len(ia), dtype=np.bool_)
    within = np.zeros(len(ia), dtype=np.bool_)
    cap = _max_edges(a_ring, a_geom, ia, b_ring, b_geom, ib)
    ea, ra, eb, rb = (np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64),
                      np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64))  # fmt: skip
    n_cross = 64
    ci, cj = np.empty(n_cross, dtype=np.int64), np.empty(n_cross, dtype=np.int64)
    ct, cu, ts = np.empty(n_cross), np.empty(n_cross), np.empty(n_cross)
    for k in range(len(ia)):
        p, q = ia[k], ib[k]
        while True:
            area, flag, full, inside = _pair_area(
                ax, ay, a_ring, a_geom[p], a_geom[p + 1], a_sign, a_box[p],
                bx, by, b_ring, b_geom[q], b_geom[q + 1], b_sign, b_box[q],
                ea, ra, eb, rb, ci, cj, ct, cu, ts,
            )  # fmt: skip
            if not full:
                break
            n_cross *= 4  # more crossings than room for them: again, with more room
            ci, cj = np.empty(n_cross, dtype=np.int64), np.empty(n_cross, dtype=np.int64)
            ct, cu, ts = np.empty(n_cross), np.empty(n_cross), np.empty(n_cross)
        areas[k], degenerate[k], within[k] = area, flag, inside
    return areas, degenerate, within


@numba.njit(nogil=True, cache=True)
def _max_edges(a_ring, a_geom, ia, b_ring, b_geom, ib):
    """The most edges (coordinates, an upper bound) of any polygon in the pairs."""
    cap = 1
    for k in range(len(ia)):
        cap = max(cap, a_ring[a_geom[ia[k] + 1]] - a_ring[a_geom[ia[k]]])
        cap = max(cap, b_ring[b_geom[ib[k] + 1]] - b_ring[b_geom[ib[k]]])
    return cap


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
def _edges_near(x, y, ring_off, r0, r1, box, eps, idx, ring):
    """The edges of rings r0..r1 whose boxes meet ``box`` ± eps: their start indices into
    ``idx`` and their rings into ``ring``; returns how many."""
    m = 0
    for r in range(r0, r1):
        for i in range(ring_off[r], ring_off[r + 1] - 1):
            if _overlaps(x[i], y[i], x[i + 1], y[i + 1], box, eps):
                idx[m] = i
                ring[m] = r
                m += 1
    return m


@numba.njit(nogil=True, cache=True)
def _sort_small(values, n):
    """Sort ``values[:n]`` in place (insertion sort: a handful of cuts per edge)."""
    for i in range(1, n):
        v = values[i]
        j = i - 1
        while j >= 0 and values[j] > v:
            values[j + 1] = values[j]
            j -= 1
        values[j + 1] = v


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
    ax, ay, a_ring, ar0, ar1, a_sign, abox, bx, by, b_ring, br0, br1, b_sign, bbox,
    ea, ra, eb, rb, ci, cj, ct, cu, ts,
):  # fmt: skip
    """Area of A ∩ B (A: rings ar0..ar1, B: rings br0..br1), whether the pair is degenerate, and
    whether the crossings did not fit in ``ci``… (then nothing else is meaningful).

    Work arrays: ``ea``, ``ra``, ``eb``, ``rb`` as long as the polygons have edges; ``ci``, ``cj``,
    ``ct``, ``cu`` (every proper crossing: A edge, B edge, parameter along each) and ``ts``, all as
    long as the most crossings that may be found."""
    eps = DEGENERATE_M
    if abox[2] < bbox[0] or bbox[2] < abox[0] or abox[3] < bbox[1] or bbox[3] < abox[1]:
        return 0.0, False, False, False
    ox, oy = abox[0], abox[1]  # local origin: small coordinates, small rounding
    na = _edges_near(ax, ay, a_ring, ar0, ar1, bbox, eps, ea, ra)
    nb = _edges_near(bx, by, b_ring, br0, br1, abox, eps, eb, rb)
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
            if boxes_apart(x0, y0, x1, y1, x2, y2, x3, y3, eps):
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
                return 0.0, True, False, False
            near = eps * lab
            if abs(d3) <= near or abs(d4) <= near:
                return 0.0, True, False, False
            if (d1 > 0) != (d2 > 0) and (d3 > 0) != (d4 > 0):
                if nc == len(ci):
                    return 0.0, False, True, False
                ci[nc], cj[nc] = i, j
                ct[nc], cu[nc] = d1 / (d1 - d2), d3 / (d3 - d4)
                nc += 1
    twice = 0.0
    within = nc == 0  # A in B's interior: no crossing, every ring of A inside, none of B in A
    # A's boundary inside B: walk each ring in order so that "inside" carries from edge to edge
    k = 0
    for r in range(ar0, ar1):
        status = -1  # unknown at the ring's start
        for e in range(a_ring[r], a_ring[r + 1] - 1):
            if k >= na or ea[k] != e:  # an edge away from B's box: it ends outside B
                status = 0
                within = False
                continue
            x0, y0, x1, y1 = ax[e] - ox, ay[e] - oy, ax[e + 1] - ox, ay[e + 1] - oy
            if status == -1:
                status = 0
                if _overlaps(ax[e], ay[e], ax[e], ay[e], bbox, 0.0) and _inside(
                    x0, y0, bx, by, b_ring, br0, br1, ox, oy
                ):
                    status = 1
                if status == 0:
                    within = False
            m = _params_of(k, ci, ct, nc, ts)
            twice += a_sign[r] * _inside_parts(x0, y0, x1, y1, ts, m, status)
            status ^= m & 1
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
            within = False
        m = _params_of(j, cj, cu, nc, ts)
        twice += b_sign[rb[j]] * _inside_parts(x0, y0, x1, y1, ts, m, status)
    return twice / 2.0, False, False, within


@numba.njit(nogil=True, cache=True)
def _touching_pair_areas(
    ax, ay, a_ring, a_geom, a_sign, a_box, bx, by, b_ring, b_geom, b_sign, b_box, ia, ib
):
    """:func:`_boundary_in` both ways for every pair: the area, and ``ok`` False where GEOS must
    decide. Work arrays are allocated once, for the largest polygon (polygons are small: ~7
    vertices in RESDC-like data, where allocating per pair would cost more than the pair)."""
    areas = np.zeros(len(ia))
    ok = np.zeros(len(ia), dtype=np.bool_)
    cap = _max_edges(a_ring, a_geom, ia, b_ring, b_geom, ib)
    edges = np.empty(cap, dtype=np.int64)
    rings = np.empty(cap, dtype=np.int64)
    near = np.empty(cap, dtype=np.int64)
    cuts = np.empty(2 + 3 * cap)
    for k in range(len(ia)):
        p, q = ia[k], ib[k]
        ar0, ar1, br0, br1 = a_geom[p], a_geom[p + 1], b_geom[q], b_geom[q + 1]
        ox, oy = a_box[p, 0], a_box[p, 1]
        twice_a, ok_a = _boundary_in(
            ax, ay, a_ring, ar0, ar1, a_sign, a_box[p],
            bx, by, b_ring, br0, br1, b_sign, b_box[q], ox, oy, True, edges, rings, near, cuts,
        )  # fmt: skip
        if not ok_a:
            continue
        twice_b, ok_b = _boundary_in(
            bx, by, b_ring, br0, br1, b_sign, b_box[q],
            ax, ay, a_ring, ar0, ar1, a_sign, a_box[p], ox, oy, False, edges, rings, near, cuts,
        )  # fmt: skip
        if ok_b:
            areas[k], ok[k] = (twice_a + twice_b) / 2.0, True
    return areas, ok


@numba.njit(nogil=True, cache=True)
def _boundary_in(
    px, py, p_ring, pr0, pr1, p_sign, pbox, qx, qy, q_ring, qr0, qr1, q_sign, qbox, ox, oy, shared,
    eq, rq, near_q, ts,
):  # fmt: skip
    """Twice the Green's term of the parts of P's boundary inside Q, plus (``shared``) of the parts
    that run along Q's boundary in the same direction; False if a part is too close to call.

    Each edge of P is cut wherever an edge of Q crosses it or a vertex of Q lies on it (within
    DEGENERATE_M); each piece between cuts is then wholly inside, outside or along Q's boundary,
    which its midpoint tells: farther than GRAY_M from Q's boundary, a crossing-number test; within
    DEGENERATE_M of a Q edge that both its ends are within 2·DEGENERATE_M of, and no other Q edge
    within GRAY_M, along that edge (the direction of both, interiors on the left, says whether it
    counts); anything else, too close to call. Edges with no Q edge within GRAY_M keep the inside/outside status of the edge before
    them (one crossing-number test per run of such edges).

    Work arrays, each as long as Q has edges (``ts``: 2 + 3 × that): ``eq``, ``rq``: Q's edges
    near P and their rings; ``near_q``: those near the current edge; ``ts``: its cuts."""
    eps, gray = DEGENERATE_M, GRAY_M
    n_eq = _edges_near(qx, qy, q_ring, qr0, qr1, pbox, gray, eq, rq)
    twice = 0.0
    for r in range(pr0, pr1):
        status = -1  # inside Q (1), outside (0) or unknown (−1) where the previous edge ended
        for e in range(p_ring[r], p_ring[r + 1] - 1):
            if not _overlaps(px[e], py[e], px[e + 1], py[e + 1], qbox, gray):
                status = 0  # away from Q: outside it
                continue
            x0, y0, x1, y1 = px[e] - ox, py[e] - oy, px[e + 1] - ox, py[e + 1] - oy
            dx, dy = x1 - x0, y1 - y0
            l2 = dx * dx + dy * dy
            if l2 == 0.0:
                continue
            ts[0], ts[1] = 0.0, 1.0
            n, m = 2, 0
            for j in range(n_eq):
                f = eq[j]
                x2, y2, x3, y3 = qx[f] - ox, qy[f] - oy, qx[f + 1] - ox, qy[f + 1] - oy
                if boxes_apart(x0, y0, x1, y1, x2, y2, x3, y3, gray):
                    continue
                near_q[m] = j
                m += 1
                for qxv, qyv in ((x2, y2), (x3, y3)):  # Q's vertices on the edge cut it
                    t, d = _project(qxv, qyv, x0, y0, dx, dy, l2)
                    if d <= eps and 0.0 < t < 1.0:
                        ts[n] = t
                        n += 1
                d1 = (x3 - x2) * (y0 - y2) - (y3 - y2) * (x0 - x2)
                d2 = (x3 - x2) * (y1 - y2) - (y3 - y2) * (x1 - x2)
                d3 = dx * (y2 - y0) - dy * (x2 - x0)
                d4 = dx * (y3 - y0) - dy * (x3 - x0)
                if d1 * d2 < 0.0 and d3 * d4 < 0.0:  # a proper crossing
                    ts[n] = d1 / (d1 - d2)
                    n += 1
            if m == 0:  # no Q edge within GRAY_M: one status all along
                if status == -1:
                    status = _inside(x0, y0, qx, qy, q_ring, qr0, qr1, ox, oy)
                if status == 1:
                    twice += p_sign[r] * (x0 * y1 - x1 * y0)
                continue
            status = -1
            _sort_small(ts, n)
            cuts = ts
            length = np.sqrt(l2)
            for c in range(n - 1):
                t0, t1 = cuts[c], cuts[c + 1]
                if t1 <= t0:
                    continue
                sx0, sy0, sx1, sy1 = x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy
                term = p_sign[r] * (sx0 * sy1 - sx1 * sy0)
                mx, my = (sx0 + sx1) / 2.0, (sy0 + sy1) / 2.0
                near, j, other = _nearest_edge(mx, my, qx, qy, eq, near_q[:m], ox, oy, gray)
                if near > gray:
                    status = _inside(mx, my, qx, qy, q_ring, qr0, qr1, ox, oy)
                    if status == 1:
                        twice += term
                    continue
                status = -1
                piece = (t1 - t0) * length
                if near > eps or (TINY_M < piece < 4.0 * eps):
                    return 0.0, False
                # a second edge of Q as near (a sliver or spike of Q thinner than GRAY_M): which
                # side the piece runs along is rounding, and it decides the piece's whole term
                if piece > TINY_M and other <= gray:
                    return 0.0, False
                f = eq[j]
                x2, y2, x3, y3 = qx[f] - ox, qy[f] - oy, qx[f + 1] - ox, qy[f + 1] - oy
                fx, fy = x3 - x2, y3 - y2
                m2 = fx * fx + fy * fy
                if piece > TINY_M and (
                    _project(sx0, sy0, x2, y2, fx, fy, m2)[1] > 2.0 * eps
                    or _project(sx1, sy1, x2, y2, fx, fy, m2)[1] > 2.0 * eps
                ):
                    return 0.0, False
                if shared and p_sign[r] * q_sign[rq[j]] * (dx * fx + dy * fy) > 0.0:
                    twice += term
    return twice, True


@numba.njit(nogil=True, cache=True, inline="always")
def _project(px, py, x0, y0, dx, dy, l2):
    """Parameter (clamped to [0, 1]) of the point of segment (x0, y0) + t·(dx, dy) nearest to
    (px, py), and the distance to it."""
    t = 0.0
    if l2 > 0.0:
        t = min(1.0, max(0.0, ((px - x0) * dx + (py - y0) * dy) / l2))
    return t, np.hypot(x0 + t * dx - px, y0 + t * dy - py)


@numba.njit(nogil=True, cache=True)
def _nearest_edge(px, py, qx, qy, edges, which, ox, oy, within):
    """Distance from (px, py) to the nearest of the edges ``edges[which]`` (if under ``within``;
    else some value above it), that edge's position in ``edges``, and the distance to the
    second nearest (likewise)."""
    best, at, second = np.inf, -1, np.inf
    for j in which:
        f = edges[j]
        x2, y2, x3, y3 = qx[f] - ox, qy[f] - oy, qx[f + 1] - ox, qy[f + 1] - oy
        if (
            px < min(x2, x3) - within
            or px > max(x2, x3) + within
            or py < min(y2, y3) - within
            or py > max(y2, y3) + within
        ):
            continue
        fx, fy = x3 - x2, y3 - y2
        d = _project(px, py, x2, y2, fx, fy, fx * fx + fy * fy)[1]
        if d < best:
            best, at, second = d, j, best
        elif d < second:
            second = d
    return best, at, second


@numba.njit(nogil=True, cache=True)
def _params_of(edge, owner, param, n, out):
    """The crossing parameters of one edge, sorted, into ``out``; returns how many."""
    m = 0
    for c in range(n):
        if owner[c] == edge:
            out[m] = param[c]
            m += 1
    _sort_small(out, m)
    return m


@numba.njit(nogil=True, cache=True)
def _inside_parts(x0, y0, x1, y1, ts, m, status):
    """Twice the signed area term Σ (xₛ yₑ − xₑ yₛ) of the parts of the segment that are inside,
    the segment being cut at ``ts[:m]`` and starting inside when ``status`` is 1."""
    total = 0.0
    t0 = 0.0
    for c in range(m + 1):
        t1 = ts[c] if c < m else 1.0
        if status:
            xs, ys = x0 + t0 * (x1 - x0), y0 + t0 * (y1 - y0)
            xe, ye = x0 + t1 * (x1 - x0), y0 + t1 * (y1 - y0)
            total += xs * ye - xe * ys
        status ^= 1
        t0 = t1
    return total
