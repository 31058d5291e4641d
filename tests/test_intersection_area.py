"""Areas of pairwise intersections from the numba kernel, against areas worked out by hand and
against GEOS. Coordinates are offset to national Albers magnitudes (millions of metres), where
rounding would show."""

import numpy as np
import pytest
import shapely

import pipeline.intersection_area as ia_mod
from pipeline.intersection_area import intersection_areas
from pipeline.rings import Rings

X0, Y0 = 1_234_567.0, 3_456_789.0  # a point in China in the RESDC Albers projection


def _at(geom):
    return shapely.transform(geom, lambda c: c + np.array([X0, Y0]))


def _box(*b):
    return _at(shapely.box(*b))


def _areas(a, b):
    a, b = np.array(a, dtype=object), np.array(b, dtype=object)
    i, j = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
    return intersection_areas(a, b, i.ravel(), j.ravel()).reshape(len(a), len(b))


def _fast_and_degenerate(a, b):
    """The kernel alone: its areas and which pairs it leaves to GEOS."""
    ra, rb = Rings.of(np.array(a)), Rings.of(np.array(b))
    return ia_mod._pair_areas(*ra.arrays(), *rb.arrays(), np.array([0]), np.array([0]))


def test_overlapping_squares():
    # [0,10]² ∩ [5,15]² = [5,10]² = 5 × 5 = 25 m²
    got = _fast_and_degenerate([_box(0, 0, 10, 10)], [_box(5, 5, 15, 15)])
    assert got[0][0] == pytest.approx(25, abs=1e-8) and not got[1][0]


def test_holes_and_clockwise_shells():
    # A: [0,10]² minus the hole [2,4]², shell stored clockwise and hole counter-clockwise (the
    # reverse of the usual order); B: [3,20]×[0.5,10.5] (no edge on an edge of A).
    # A ∩ B = [3,10]×[0.5,10] minus the hole's part [3,4]×[2,4] = 7 × 9.5 − 1 × 2 = 64.5 m²
    shell = shapely.box(0, 0, 10, 10).exterior.coords[::-1]
    hole = shapely.box(2, 2, 4, 4).exterior.coords  # counter-clockwise
    a = _at(shapely.Polygon(shell, [hole]))
    got = _fast_and_degenerate([a], [_box(3, 0.5, 20, 10.5)])
    assert got[0][0] == pytest.approx(64.5, abs=1e-8) and not got[1][0]


def test_multipolygon():
    # B: [0,1]×[0,10] and [9,10]×[0,10]; A: [0.5,9.5]×[−1,11]
    # A ∩ B = 0.5 × 10 + 0.5 × 10 = 10 m²
    b = _at(shapely.MultiPolygon([shapely.box(0, 0, 1, 10), shapely.box(9, 0, 10, 10)]))
    got = _fast_and_degenerate([_box(0.5, -1, 9.5, 11)], [b])
    assert got[0][0] == pytest.approx(10, abs=1e-8) and not got[1][0]


def test_containment_and_disjoint_in_a_notch():
    small, big = _box(2, 2, 3, 4), _box(0, 0, 10, 10)
    # an L: [0,10]² without its corner [5,10]²; a square inside that corner touches nothing
    ell = _at(shapely.box(0, 0, 10, 10).difference(shapely.box(5, 5, 10, 10)))
    corner = _box(6, 6, 9, 9)
    areas = _areas([small, big, corner], [big, small, ell])
    # small in big: 1 × 2 = 2; big ∩ big = 100; big ∩ L = 100 − 25 = 75; corner ∩ L = 0
    np.testing.assert_allclose(areas[0, :2], [2, 2], atol=1e-8)
    np.testing.assert_allclose(areas[1, 0], 100, atol=1e-8)
    np.testing.assert_allclose(areas[1, 2], 75, atol=1e-8)
    np.testing.assert_allclose(areas[2, 2], 0, atol=1e-8)


def test_shared_edges_go_to_geos_and_stay_exact():
    # grid cells [x, x+10]×[y, y+10] against [20,50]×[20,70]: edges lie on each other, so the
    # kernel must refuse (degenerate) and GEOS gives the exact 100 / 0 m² per cell
    cell, box = _box(20, 20, 30, 30), _box(20, 20, 50, 70)
    assert _fast_and_degenerate([cell], [box])[1][0]
    cells = [_box(x, y, x + 10, y + 10) for x in range(0, 100, 10) for y in range(0, 100, 10)]
    areas = _areas(cells, [box])[:, 0]
    # 3 columns × 5 rows of cells lie inside: 15 × 100 = 1,500 m², the box's area
    assert areas.sum() == pytest.approx(30 * 50, abs=1e-6)
    assert sorted(set(np.round(areas, 6))) == [0, 100]


def test_vertex_on_the_other_boundary_is_degenerate():
    # a triangle whose apex lies exactly on the square's top edge
    tri = _at(shapely.Polygon([(2, 0), (8, 0), (5, 10)]))
    assert _fast_and_degenerate([tri], [_box(0, 2, 10, 10)])[1][0]
    # triangle above y = 2: similar triangle of height 8 and base 6 × 8/10 = 4.8: ½·4.8·8 = 19.2
    assert _areas([tri], [_box(0, 2, 10, 10)])[0, 0] == pytest.approx(19.2, abs=1e-8)


def test_other_geometry_types_are_left_to_geos():
    line = _at(shapely.LineString([(0, 0), (10, 10)]))
    mixed = _at(shapely.GeometryCollection([shapely.box(0, 0, 2, 2), shapely.Point(5, 5)]))
    areas = _areas([line, mixed], [_box(1, 1, 3, 3)])
    # a line has no area; the collection's square meets [1,3]² in [1,2]² = 1 m²
    np.testing.assert_allclose(areas[:, 0], [0, 1], atol=1e-9)


def test_random_polygons_match_geos():
    rng = np.random.default_rng(7)

    def star(n, r):  # a simple polygon: points sorted by angle around a centre
        cx, cy = rng.uniform(0, 1000, 2)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r * rng.uniform(0.4, 1.0, n)
        return _at(shapely.Polygon(np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)]))

    a = np.array([star(rng.integers(3, 40), rng.uniform(20, 200)) for _ in range(600)])
    b = np.array([star(rng.integers(3, 300), rng.uniform(50, 400)) for _ in range(60)])
    a, b = a[shapely.is_valid(a)], b[shapely.is_valid(b)]
    j, i = shapely.STRtree(a).query(b)
    got = intersection_areas(a, b, i, j)
    ref = shapely.area(shapely.intersection(a[i], b[j]))
    assert len(i) > 5000 and (ref > 0).sum() > 2000
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-6)
