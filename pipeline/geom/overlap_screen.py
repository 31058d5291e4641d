"""Which polygons of a layer might overlap another: a fast screen for a polygon coverage.

One public function, :func:`overlap_suspects`. When it flags nothing, no two polygons overlap;
when polygons overlap, every connected overlapping region has a flagged polygon over it, and
:mod:`pipeline.zonal.overlaps` tests exactly from there. It does the job of GEOS' coverage validator
about 5× faster, by edge matching in numba:

1. Every ring edge is taken with its polygon's interior on the left. In a layer without overlaps
   that is noded like RESDC's (neighbours share their vertices), an edge between two polygons
   appears twice, once in each direction; such pairs cancel.
2. An edge that appears twice in the same direction, or three or more times, is suspect (two
   polygons on the same side of it).
3. What is left, the unmatched edges, must bound the layer from the outside. Let ``f(p)`` be the
   number of polygons covering a point: matched pairs do not change ``f``; across an unmatched
   edge it drops by one from left to right. If unmatched edges meet only at shared end points,
   ``f`` is constant along each side of each of them, and if no other polygon touches the
   midpoint of any of them, ``f`` is 0 on every right side, so at most 1 everywhere: no overlaps.
   Hence an unmatched edge is suspect when it meets another unmatched edge anywhere but at a
   shared end point (crossings, T-junctions, edges running along each other), or when its
   midpoint lies in, on or within ``NEAR_M`` of another polygon (both polygons are flagged; the
   margin covers slivers thinner than rounding, e.g. a near-copy of a polygon whose extra
   vertices lie a few units in the last place off its edges). The same argument puts a
   flagged polygon on the border of every region where ``f`` ≥ 2.

Layers whose neighbours do not share vertices (not noded) are screened correctly too, with many
more suspects, so more exact tests follow.
"""

from __future__ import annotations

import numba
import numpy as np
import shapely

from pipeline.geom.rings import Rings, mix

#: how close (metres) another polygon may come to an unmatched edge's midpoint before both are
#: suspects: ~1,000 units in the last place at national coordinates, far below any real feature
NEAR_M = 1e-6


def overlap_suspects(
    geoms: np.ndarray, subset: np.ndarray | None = None, rings: Rings | None = None
) -> np.ndarray:
    """Sorted indices into ``geoms`` (valid Polygons and MultiPolygons) of suspect polygons: none
    when no two polygons of ``geoms`` overlap; otherwise at least one over every connected region
    where they do (not necessarily every overlapping polygon: follow the overlaps from these).

    ``subset``: screen only these polygons among themselves; ``rings``: ``Rings.of(geoms)``, if
    the caller has it already.
    """
    geoms = np.asarray(geoms)
    subset = np.arange(len(geoms)) if subset is None else np.asarray(subset, dtype=np.int64)
    if len(subset) < 2:
        return np.zeros(0, dtype=np.int64)
    rings = rings or Rings.of(geoms)
    x0, y0, x1, y1, owner = _edges(
        rings.x, rings.y, rings.ring_off, rings.geom_rings, rings.sign, subset
    )
    key = _keys(x0, y0, x1, y1)
    suspect, unmatched = _match(key, x0, y0, x1, y1, owner, len(geoms))
    u = np.flatnonzero(unmatched)
    if len(u):
        # unmatched edges meeting other than at a shared end point
        lines = shapely.linestrings(np.stack([np.c_[x0[u], y0[u]], np.c_[x1[u], y1[u]]], axis=1))
        i, j = shapely.STRtree(lines).query(lines, predicate="intersects")
        i, j = i[i < j], j[i < j]
        bad = _bad_meetings(u[i], u[j], x0, y0, x1, y1)
        suspect[owner[u[i][bad]]] = True
        suspect[owner[u[j][bad]]] = True
        # another polygon in, on or right next to an unmatched edge's midpoint
        mids = shapely.points((x0[u] + x1[u]) / 2, (y0[u] + y1[u]) / 2)
        # polygons as the query side: each is prepared once for all the points near it
        g, k = shapely.STRtree(mids).query(geoms[subset], predicate="dwithin", distance=NEAR_M)
        g = subset[g]
        other = g != owner[u[k]]
        suspect[g[other]] = True
        suspect[owner[u[k[other]]]] = True
    return np.flatnonzero(suspect)


@numba.njit(nogil=True, cache=True)
def _edges(x, y, ring_off, geom_rings, sign, subset):
    """Every edge of non-zero length of the ``subset`` geometries, oriented with its polygon's
    interior on the left."""
    n = 0
    for g in subset:
        n += ring_off[geom_rings[g + 1]] - ring_off[geom_rings[g]]
    x0, y0, x1, y1 = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    owner = np.empty(n, dtype=np.int32)  # 4 bytes an edge: millions of them
    m = 0
    for g in subset:
        for r in range(geom_rings[g], geom_rings[g + 1]):
            for i in range(ring_off[r], ring_off[r + 1] - 1):
                if x[i] == x[i + 1] and y[i] == y[i + 1]:
                    continue  # a repeated point
                a, b = (i, i + 1) if sign[r] > 0 else (i + 1, i)
                x0[m], y0[m], x1[m], y1[m] = x[a], y[a], x[b], y[b]
                owner[m] = g
                m += 1
    return x0[:m], y0[:m], x1[:m], y1[:m], owner[:m]


@numba.njit(inline="always")
def _first(ax, ay, bx, by):
    """Is (ax, ay) before (bx, by) in x-then-y order?"""
    return ax < bx or (ax == bx and ay < by)


@numba.njit(nogil=True, cache=True)
def _keys(x0, y0, x1, y1):
    """A hash of each edge's end points taken in a fixed order, equal for an edge and its
    reverse."""
    b0, c0 = x0.view(np.uint64), y0.view(np.uint64)
    b1, c1 = x1.view(np.uint64), y1.view(np.uint64)
    out = np.empty(len(x0), dtype=np.uint64)
    for i in range(len(x0)):
        if _first(x0[i], y0[i], x1[i], y1[i]):
            ax, ay, bx, by = b0[i], c0[i], b1[i], c1[i]
        else:
            ax, ay, bx, by = b1[i], c1[i], b0[i], c0[i]
        out[i] = mix(mix(mix(mix(np.uint64(0), ax), ay), bx), by)
    return out.view(np.int64)


@numba.njit(nogil=True, cache=True)
def _match(key, x0, y0, x1, y1, owner, n_geoms):
    """Pair each edge with its reverse, through a hash table (open addressing, at most half
    full). Returns suspect polygons (same-direction duplicates, edges shared by three or more, a
    polygon meeting itself) and the unmatched edges."""
    n = len(key)
    size = 16
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    # int32 (half the memory of int64; edges are counted in millions, never in billions)
    table = np.full(size, -1, dtype=np.int32)
    head = np.empty(n, dtype=np.int32)  # the first edge with the same end points
    count = np.zeros(n, dtype=np.int32)  # how many edges have them, kept at the first
    hashes = key.view(np.uint64)
    for i in range(n):
        h = hashes[i] & mask
        while True:
            j = table[h]
            if j < 0:
                table[h] = i
                head[i] = i
                count[i] = 1
                break
            fwd = x0[j] == x0[i] and y0[j] == y0[i] and x1[j] == x1[i] and y1[j] == y1[i]
            rev = x0[j] == x1[i] and y0[j] == y1[i] and x1[j] == x0[i] and y1[j] == y0[i]
            if fwd or rev:
                head[i] = j
                count[j] += 1
                break
            h = (h + np.uint64(1)) & mask
    suspect = np.zeros(n_geoms, dtype=np.bool_)
    unmatched = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        r = head[i]
        if count[r] == 1:
            unmatched[i] = True
        elif count[r] > 2:
            suspect[owner[i]] = True
        elif i != r:  # the second of a pair: fine if it is the first's reverse, in another polygon
            rev = x0[r] == x1[i] and y0[r] == y1[i] and x1[r] == x0[i] and y1[r] == y0[i]
            if not rev or owner[r] == owner[i]:
                suspect[owner[i]] = True
                suspect[owner[r]] = True
    return suspect, unmatched


@numba.njit(nogil=True, cache=True)
def _bad_meetings(i, j, x0, y0, x1, y1):
    """For pairs of intersecting edges: do they meet other than at one shared end point?"""
    bad = np.zeros(len(i), dtype=np.bool_)
    for k in range(len(i)):
        a, b = i[k], j[k]
        shared = 0
        for p in range(2):
            px = x0[a] if p == 0 else x1[a]
            py = y0[a] if p == 0 else y1[a]
            for q in range(2):
                qx = x0[b] if q == 0 else x1[b]
                qy = y0[b] if q == 0 else y1[b]
                if px == qx and py == qy:
                    shared += 1
        if shared != 1:
            bad[k] = True  # crossing, touching inside, or the same edge twice
            continue
        # one shared end point: fine unless the two run along each other from it
        ux, uy = x1[a] - x0[a], y1[a] - y0[a]
        vx, vy = x1[b] - x0[b], y1[b] - y0[b]
        if ux * vy - uy * vx == 0.0:
            # collinear: along each other when both leave the shared point the same way
            sa = (
                1.0
                if (x0[a] == x0[b] and y0[a] == y0[b]) or (x0[a] == x1[b] and y0[a] == y1[b])
                else -1.0
            )
            sb = (
                1.0
                if (x0[b] == x0[a] and y0[b] == y0[a]) or (x0[b] == x1[a] and y0[b] == y1[a])
                else -1.0
            )
            if sa * sb * (ux * vx + uy * vy) > 0:
                bad[k] = True
    return bad
