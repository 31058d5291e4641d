"""The pixel coverage kernel (pipeline.geom.pixel_coverage) against GEOS: each pixel's covered
fraction equals the area of the polygon ∩ the pixel's square (shapely), on shapes by hand and on
random polygons with holes."""

import numpy as np
import shapely

from pipeline.geom.pixel_coverage import pixel_coverage


def _rings(geom):
    """The kernel's input: closed rings as one (n, 2) array with start/end offsets."""
    rings = shapely.get_rings(shapely.get_parts(geom))
    xy, which = shapely.get_coordinates(rings, return_index=True)
    counts = np.bincount(which, minlength=len(rings))
    ends = np.cumsum(counts)
    return xy.astype(np.float64), (ends - counts).astype(np.int64), ends.astype(np.int64)


def _geos(geom, h, w):
    """Pixel (row i, column j) is the square [j, j+1] × [i, i+1]."""
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    cells = shapely.box(jj, ii, jj + 1, ii + 1)
    return shapely.area(shapely.intersection(cells, geom))


def test_half_pixels_by_hand():
    # the triangle (0,0) (2,0) (0,2) over a 2 × 2 window: pixel (0,0) is covered wholly, pixels
    # (0,1) and (1,0) half (the diagonal x + y = 2 cuts them corner to corner), (1,1) not at all
    tri = shapely.Polygon([(0, 0), (2, 0), (0, 2)])
    got = pixel_coverage(*_rings(tri), 0.0, 0.0, 2, 2)
    np.testing.assert_allclose(got, [[1.0, 0.5], [0.5, 0.0]], atol=1e-15)


def test_window_offset_and_clipping():
    # the square [0.5, 2.5]² through a 2 × 2 window whose origin is (1, 1): window pixel (0,0) is
    # [1,2]² (covered wholly), (0,1) is [2,3]×[1,2] (covered for x ≤ 2.5: ½), (1,0) likewise ½,
    # (1,1) is [2,3]² (covered [2,2.5]²: ¼)
    sq = shapely.box(0.5, 0.5, 2.5, 2.5)
    got = pixel_coverage(*_rings(sq), 1.0, 1.0, 2, 2)
    np.testing.assert_allclose(got, [[1.0, 0.5], [0.5, 0.25]], atol=1e-15)


def test_random_polygons_with_holes_match_geos():
    rng = np.random.default_rng(5)
    h, w = 24, 31
    tested = 0
    for _ in range(80):
        cx, cy = rng.uniform(5, 25), rng.uniform(5, 20)
        n = int(rng.integers(3, 40))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(2, 12, n)
        shell = np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)]  # may leave the window
        geom = shapely.Polygon(shell)
        if not shapely.is_valid(geom):  # two vertices at almost one angle can make it cross
            continue
        if rng.random() < 0.5:
            geom = geom.difference(shapely.Point(cx, cy).buffer(rng.uniform(0.3, 1.5)))
        if not shapely.is_valid(geom) or geom.is_empty:
            continue
        got = pixel_coverage(*_rings(geom), 0.0, 0.0, h, w)
        np.testing.assert_allclose(got, _geos(geom, h, w), rtol=0, atol=1e-9)
        tested += 1
    assert tested >= 50
