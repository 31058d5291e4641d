"""Compile the numba kernels of the vector path ahead of the first run:
``python -m pipeline.runtime.kernels`` (``scripts/demo.sh`` and ``scripts/test.sh`` do it after
installing).

numba keeps compiled code beside the modules (``cache=True``), so only the first run after an
install or an upgrade would otherwise spend several seconds compiling, which would also distort a
first timing.
"""

from __future__ import annotations

import time

import numpy as np
import shapely


def compile_kernels() -> float:
    """Run every vector kernel once on two squares; returns the seconds it took."""
    from pipeline.geom.boxes import box_pairs
    from pipeline.geom.identical import identical_polygons
    from pipeline.geom.intersection_area import intersection_areas
    from pipeline.geom.overlap_screen import overlap_suspects
    from pipeline.geom.rings import Rings

    started = time.perf_counter()
    squares = np.array([shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    intersection_areas(squares, squares[::-1], np.array([0, 1]), np.array([0, 0]))
    overlap_suspects(squares)
    identical_polygons(squares, squares)
    box_pairs(shapely.bounds(squares), shapely.bounds(squares))
    wkb = shapely.to_wkb(squares, flavor="iso")
    offsets = np.cumsum([0] + [len(w) for w in wkb])
    Rings.from_wkb(np.frombuffer(b"".join(wkb), dtype=np.uint8), offsets).simple_valid()
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"numba kernels ready ({compile_kernels():.1f} s)")
