"""Polygons that recur unchanged from one year to the next, matched by ring hashes (numba, in
:class:`~pipeline.geom.rings.Rings`) and then coordinate by coordinate."""

from __future__ import annotations

import numpy as np

from pipeline.geom.rings import Rings

__all__ = ["identical_polygons"]


def identical_polygons(
    later: np.ndarray, first: np.ndarray, rings: tuple[Rings, Rings] | None = None
) -> np.ndarray:
    """For each polygon of ``later``, the index of an identical polygon in ``first``, or −1.
    RESDC updates a period's map from the previous one, so most polygons recur as they are.

    Identical means the same planar shape, bit for bit: the same rings in the same order, the
    same shells and coordinates (x, y; a Polygon equals a one-part MultiPolygon of it, and Z is
    ignored). The match is one to one: a second copy of a polygon in ``later`` gets −1 (it is new
    area, and the overlap check must see it). ``rings``: their :class:`Rings`, if at hand."""
    if not len(later) or not len(first):
        return np.full(len(later), -1, dtype=np.int64)
    rl, rf = rings or (Rings.of(later), Rings.of(first))
    hl, hf = rl.hashes(), rf.hashes()
    order = np.argsort(hf, kind="stable")
    hf = hf[order]
    out = np.full(len(later), -1, dtype=np.int64)
    lo = np.searchsorted(hf, hl)
    # equal hashes are checked coordinate by coordinate (rarely more than one candidate)
    step = 0
    while True:
        at = np.minimum(lo + step, len(hf) - 1)
        todo = np.flatnonzero((out < 0) & (lo + step < len(hf)) & (hf[at] == hl))
        if not len(todo):
            break
        cand = order[lo[todo] + step]
        same = rl.same(todo, rf, cand)
        out[todo[same]] = cand[same]
        step += 1
    # one to one: only the first later polygon keeps a first-year polygon it shares with others
    matched = np.flatnonzero(out >= 0)
    _, first_of = np.unique(out[matched], return_index=True)
    repeat = np.ones(len(matched), dtype=bool)
    repeat[first_of] = False
    out[matched[repeat]] = -1
    return out
