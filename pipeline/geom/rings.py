"""Polygons as flat coordinate arrays for numba kernels: shapely's ragged layout (coordinates,
ring offsets, rings per geometry), every ring's orientation and every geometry's bounding box.

Used by :mod:`pipeline.geom.intersection_area` (areas of intersections) and :mod:`pipeline.geom.overlap_screen`
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
    on the left (a counter-clockwise shell, a clockwise hole), −1 otherwise; ``bounds``: (n, 4);
    ``shell``: whether each ring is its polygon's shell."""

    x: np.ndarray
    y: np.ndarray
    ring_off: np.ndarray
    geom_rings: np.ndarray
    sign: np.ndarray
    bounds: np.ndarray
    shell: np.ndarray

    @classmethod
    def of(cls, geoms: np.ndarray) -> Rings:
        """``geoms``: an array of Polygons and MultiPolygons (empty ones allowed)."""
        geoms = np.asarray(geoms)
        xy = shapely.get_coordinates(geoms)  # geometry by geometry, ring by ring
        # Most land-use polygons are one ring: their ring is all their coordinates. Only the
        # others (holes, several parts) are taken apart, which is the slow part in shapely.
        simple = (shapely.get_type_id(geoms) == 3) & (shapely.get_num_interior_rings(geoms) == 0)
        ring_geom = [np.flatnonzero(simple)]
        ring_len = [shapely.get_num_coordinates(geoms[simple])]
        shell = [np.ones(int(simple.sum()), dtype=bool)]
        other = np.flatnonzero(~simple)
        if len(other):
            parts, of_part = shapely.get_parts(geoms[other], return_index=True)
            rings, of_ring = shapely.get_rings(parts, return_index=True)
            ring_geom.append(other[of_part[of_ring]])
            ring_len.append(shapely.get_num_coordinates(rings))
            first = np.ones(len(rings), dtype=bool)
            first[1:] = of_ring[1:] != of_ring[:-1]  # the first ring of each part is its shell
            shell.append(first)
        ring_geom = np.concatenate(ring_geom)
        order = np.argsort(ring_geom, kind="stable")  # rings in geometry order, as in xy
        ring_off = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(np.concatenate(ring_len)[order], out=ring_off[1:])
        geom_rings = np.zeros(len(geoms) + 1, dtype=np.int64)
        np.cumsum(np.bincount(ring_geom, minlength=len(geoms)), out=geom_rings[1:])
        x = np.ascontiguousarray(xy[:, 0])
        y = np.ascontiguousarray(xy[:, 1])
        shell = np.concatenate(shell)[order]
        sign = _ring_signs(x, y, ring_off, shell)
        return cls(x, y, ring_off, geom_rings, sign, shapely.bounds(geoms), shell)

    @classmethod
    def from_wkb(cls, data: np.ndarray, offsets: np.ndarray) -> Rings | None:
        """The Rings of WKB polygons stored back to back: geometry ``g`` is
        ``data[offsets[g]:offsets[g + 1]]`` (an Arrow binary column's buffers), read without
        building shapely geometries and without holding the GIL. The same arrays as
        :meth:`of` on those geometries; None if any of them is not a little-endian ISO WKB
        (Multi)Polygon (then use :meth:`of`)."""
        data = np.ascontiguousarray(data, dtype=np.uint8)
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        counts = _wkb_counts(data, offsets)
        if counts[0] < 0:
            return None
        x, y, ring_off, geom_rings, shell, bounds = _wkb_read(data, offsets, *counts)
        sign = _ring_signs(x, y, ring_off, shell)
        return cls(x, y, ring_off, geom_rings, sign, bounds, shell)

    @classmethod
    def concat(cls, parts: list[Rings]) -> Rings:
        """The geometries of ``parts``, one after another."""
        if len(parts) == 1:
            return parts[0]
        coords = np.cumsum([0] + [len(p.x) for p in parts])
        rings = np.cumsum([0] + [len(p.ring_off) - 1 for p in parts])
        return cls(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([[0]] + [p.ring_off[1:] + c for p, c in zip(parts, coords)]),
            np.concatenate([[0]] + [p.geom_rings[1:] + r for p, r in zip(parts, rings)]),
            np.concatenate([p.sign for p in parts]),
            np.concatenate([p.bounds for p in parts]).reshape(-1, 4),
            np.concatenate([p.shell for p in parts]),
        )

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.x, self.y, self.ring_off, self.geom_rings, self.sign, self.bounds

    def hashes(self) -> np.ndarray:
        """A 64-bit hash of each geometry's exact coordinates and ring structure."""
        return _hashes(
            self.x.view(np.uint64), self.y.view(np.uint64), self.ring_off, self.geom_rings,
            self.shell,
        )  # fmt: skip

    def simple_valid(self) -> np.ndarray:
        """For each geometry, True where it is proven valid cheaply: one ring of 4 to
        SIMPLE_MAX_COORDS finite coordinates, no edge of zero length, no edge turning back onto
        the one before, and every two edges that are not neighbours clearly apart (boxes apart,
        or one edge's ends clearly on one side of the other's line). False means "not proven":
        ask GEOS (holes, several parts, long rings, edges touching or too close to call)."""
        return _simple_valid(self.x, self.y, self.ring_off, self.geom_rings)

    def same(self, i: np.ndarray, other: Rings, j: np.ndarray) -> np.ndarray:
        """For each k: is geometry ``i[k]`` exactly geometry ``j[k]`` of ``other`` (the same rings,
        shells and coordinates, bit for bit)?"""
        return _same(
            self.x, self.y, self.ring_off, self.geom_rings, self.shell, i,
            other.x, other.y, other.ring_off, other.geom_rings, other.shell, j,
        )  # fmt: skip


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


#: rings longer than this (coordinates) are left to GEOS by :meth:`Rings.simple_valid`, whose
#: test of every pair of edges grows with the square of the length
SIMPLE_MAX_COORDS = 64


@numba.njit(nogil=True, cache=True)
def _simple_valid(x, y, ring_off, geom_rings):
    out = np.zeros(len(geom_rings) - 1, dtype=np.bool_)
    for g in range(len(geom_rings) - 1):
        if geom_rings[g + 1] - geom_rings[g] == 1:
            r = geom_rings[g]
            out[g] = _ring_simple(x, y, ring_off[r], ring_off[r + 1])
    return out


@numba.njit(nogil=True, cache=True)
def _ring_simple(x, y, start, stop):
    """Is the closed ring x[start:stop], y[start:stop] proven simple (see Rings.simple_valid)?"""
    n = stop - start
    if n < 4 or n > SIMPLE_MAX_COORDS:
        return False
    if x[start] != x[stop - 1] or y[start] != y[stop - 1]:
        return False
    # local coordinates: small numbers, small rounding; ``tol`` is far above the rounding of a
    # cross product of them (~1e-16 of extent²) and far below any real feature
    x0, y0 = x[start], y[start]
    extent = 0.0
    for i in range(start, stop):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            return False
        extent = max(extent, abs(x[i] - x0), abs(y[i] - y0))
    tol = 1e-12 * extent * extent
    m = n - 1  # edges; edge k runs from point k to point k + 1
    for k in range(m):
        ax, ay = x[start + k] - x0, y[start + k] - y0
        bx, by = x[start + k + 1] - x0, y[start + k + 1] - y0
        if ax == bx and ay == by:
            return False  # a repeated point
        # the edge before this one (the ring is closed: the last edge comes before the first)
        p = start + (k - 1 if k > 0 else m - 1)
        px, py = x[p] - x0, y[p] - y0
        turn = (ax - px) * (by - ay) - (ay - py) * (bx - ax)
        if abs(turn) <= tol and (ax - px) * (bx - ax) + (ay - py) * (by - ay) <= 0.0:
            return False  # turning back onto it, or too close to call
        for j in range(k + 2, m):
            if k == 0 and j == m - 1:
                continue  # the first and last edges are neighbours
            cx, cy = x[start + j] - x0, y[start + j] - y0
            dx, dy = x[start + j + 1] - x0, y[start + j + 1] - y0
            if boxes_apart(ax, ay, bx, by, cx, cy, dx, dy, 0.0):
                continue
            d1 = (dx - cx) * (ay - cy) - (dy - cy) * (ax - cx)  # this edge's ends, that line
            d2 = (dx - cx) * (by - cy) - (dy - cy) * (bx - cx)
            if (d1 > tol and d2 > tol) or (d1 < -tol and d2 < -tol):
                continue
            d3 = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)  # that edge's ends, this line
            d4 = (bx - ax) * (dy - ay) - (by - ay) * (dx - ax)
            if (d3 > tol and d4 > tol) or (d3 < -tol and d4 < -tol):
                continue
            return False  # they meet, or too close to call
    return True


@numba.njit(inline="always")
def boxes_apart(x0, y0, x1, y1, x2, y2, x3, y3, margin):
    """Are the bounding boxes of segments (x0, y0)–(x1, y1) and (x2, y2)–(x3, y3) farther apart
    than ``margin`` along x or y?"""
    return (
        max(x0, x1) < min(x2, x3) - margin
        or max(x2, x3) < min(x0, x1) - margin
        or max(y0, y1) < min(y2, y3) - margin
        or max(y2, y3) < min(y0, y1) - margin
    )


@numba.njit(inline="always")
def mix(h, v):
    """One splitmix64 round of the hash ``h`` combined with the 64 bits ``v``."""
    z = (h ^ v) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(nogil=True, cache=True)
def _hashes(xb, yb, ring_off, geom_rings, shell):
    out = np.empty(len(geom_rings) - 1, dtype=np.uint64)
    for g in range(len(geom_rings) - 1):
        h = mix(np.uint64(0), np.uint64(geom_rings[g + 1] - geom_rings[g]))
        for r in range(geom_rings[g], geom_rings[g + 1]):
            h = mix(
                h, np.uint64(ring_off[r + 1] - ring_off[r]) * np.uint64(2) + np.uint64(shell[r])
            )
            for i in range(ring_off[r], ring_off[r + 1]):
                h = mix(mix(h, xb[i]), yb[i])
        out[g] = h
    return out


@numba.njit(nogil=True, cache=True)
def _same(ax, ay, a_ring, a_geom, a_shell, ia, bx, by, b_ring, b_geom, b_shell, ib):
    out = np.zeros(len(ia), dtype=np.bool_)
    for k in range(len(ia)):
        g, h = ia[k], ib[k]
        n = a_geom[g + 1] - a_geom[g]
        if n != b_geom[h + 1] - b_geom[h]:
            continue
        ok = True
        for t in range(n):
            r, q = a_geom[g] + t, b_geom[h] + t
            m = a_ring[r + 1] - a_ring[r]
            if m != b_ring[q + 1] - b_ring[q] or a_shell[r] != b_shell[q]:
                ok = False
                break
            for c in range(m):
                if ax[a_ring[r] + c] != bx[b_ring[q] + c] or ay[a_ring[r] + c] != by[b_ring[q] + c]:
                    ok = False
                    break
            if not ok:
                break
        out[k] = ok
    return out


# --- WKB ----------------------------------------------------------------------------------------


@numba.njit(inline="always")
def _u32(data, pos):
    return (
        np.int64(data[pos])
        | (np.int64(data[pos + 1]) << 8)
        | (np.int64(data[pos + 2]) << 16)
        | (np.int64(data[pos + 3]) << 24)
    )


@numba.njit(inline="always")
def _dims(kind):
    """Ordinates per point of an ISO WKB type code (1000s: Z, 2000s: M, 3000s: ZM), and the
    plain type (the code modulo 1000: 3 Polygon, 6 MultiPolygon); (0, 0) for a code above
    3006."""
    if kind > 3006:
        return 0, 0
    base = kind % 1000
    return 2 + (1 if kind >= 1000 else 0) + (1 if kind >= 3000 else 0), base


@numba.njit(nogil=True, cache=True)
def _wkb_polygon(data, pos, end, out):
    """Walk one WKB Polygon at ``pos`` (its header included): adds rings and points to ``out``
    (counts), returns the position after it, or −1 if it is not a little-endian Polygon."""
    if pos + 9 > end or data[pos] != 1:
        return -1
    dims, base = _dims(_u32(data, pos + 1))
    if base != 3:
        return -1
    n_rings = _u32(data, pos + 5)
    pos += 9
    if n_rings == 0:  # an empty polygon: one ring of no points, as shapely's coordinates give
        out[1] += 1
    for _ in range(n_rings):
        if pos + 4 > end:
            return -1
        n = _u32(data, pos)
        pos += 4 + n * 8 * dims
        out[1] += 1
        out[2] += n
    return pos if pos <= end else -1


@numba.njit(nogil=True, cache=True)
def _wkb_counts(data, offsets):
    """(geometries, rings, points), or (−1, 0, 0) if a geometry is not a little-endian ISO WKB
    Polygon or MultiPolygon."""
    out = np.zeros(3, dtype=np.int64)
    out[0] = len(offsets) - 1
    for g in range(len(offsets) - 1):
        pos, end = offsets[g], offsets[g + 1]
        if pos + 9 > end or data[pos] != 1:
            out[0] = -1
            return out
        base = _dims(_u32(data, pos + 1))[1]
        if base == 3:
            pos = _wkb_polygon(data, pos, end, out)
        elif base == 6:
            n_parts = _u32(data, pos + 5)
            pos += 9
            for _ in range(n_parts):
                pos = _wkb_polygon(data, pos, end, out)
                if pos < 0:
                    break
        else:
            pos = -1
        if pos < 0:
            out[0] = -1
            return out
    return out


@numba.njit(nogil=True, cache=True)
def _wkb_read(data, offsets, n_geoms, n_rings, n_points):
    x = np.empty(n_points)
    y = np.empty(n_points)
    ring_off = np.zeros(n_rings + 1, dtype=np.int64)
    geom_rings = np.zeros(n_geoms + 1, dtype=np.int64)
    shell = np.zeros(n_rings, dtype=np.bool_)
    bounds = np.full((n_geoms, 4), np.nan)
    r = 0
    p = 0
    for g in range(n_geoms):
        pos = offsets[g]
        dims, base = _dims(_u32(data, pos + 1))
        n_parts = 1
        if base == 6:
            n_parts = _u32(data, pos + 5)
            pos += 9
        x0, y0, x1, y1 = np.inf, np.inf, -np.inf, -np.inf
        for _ in range(n_parts):
            dims, base = _dims(_u32(data, pos + 1))
            n_part_rings = _u32(data, pos + 5)
            pos += 9
            if n_part_rings == 0:
                shell[r] = True
                r += 1
                ring_off[r] = p
            for k in range(n_part_rings):
                n = _u32(data, pos)
                pos += 4
                shell[r] = k == 0
                xy = data[pos : pos + n * 8 * dims].view(np.float64)
                for i in range(n):
                    x[p] = xy[i * dims]
                    y[p] = xy[i * dims + 1]
                    x0, x1 = min(x0, x[p]), max(x1, x[p])
                    y0, y1 = min(y0, y[p]), max(y1, y[p])
                    p += 1
                pos += n * 8 * dims
                r += 1
                ring_off[r] = p
        geom_rings[g + 1] = r
        if x0 <= x1:
            bounds[g, 0], bounds[g, 1], bounds[g, 2], bounds[g, 3] = x0, y0, x1, y1
    return x, y, ring_off, geom_rings, shell, bounds
