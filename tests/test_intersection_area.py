"""Areas of pairwise intersections from the numba kernel, against areas worked out by hand and
against GEOS. Coordinates are offset to national Albers magnitudes (millions of metres), where
rounding would show."""

import numpy as np
import pytest
import shapely

import pipeline.geom.intersection_area as ia_mod
from pipeline.geom.intersection_area import intersection_areas
from pipeline.geom.rings import Rings

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


def test_within_is_shown_only_for_a_polygon_clear_inside_the_other():
    holed = _at(shapely.Polygon(shapely.box(0, 0, 10, 10).exterior.coords,
                                [shapely.box(4, 4, 6, 6).exterior.coords]))  # fmt: skip
    big, small = _box(0, 0, 10, 10), _box(2, 2, 3, 3)
    pairs = [
        (small, big, 1, True),  # inside: 1 × 1
        (_box(8, 8, 12, 12), big, 4, False),  # crosses: [8,10]² = 2 × 2
        (_box(0, 2, 1, 3), big, 1, False),  # inside, but on big's edge x = 0: not shown
        (_box(4.5, 4.5, 5.5, 5.5), holed, 0, False),  # in the hole
        (_box(1, 1, 9, 9), holed, 60, False),  # around the hole: 8 × 8 − 2 × 2
        (big, small, 1, False),  # the other way round
    ]
    a, b, expected, shown = (np.array(col, dtype=object) for col in zip(*pairs))
    k = np.arange(len(pairs))
    areas, inside = intersection_areas(a, b, k, k, within=True)
    np.testing.assert_allclose(areas, expected.astype(float), atol=1e-8)
    assert inside.tolist() == shown.tolist()


def test_more_crossings_than_the_first_work_arrays_hold():
    # a comb of 100 teeth (base 1 m, height 10 m, on the strip [0,100]×[−1,0]) against the strip
    # [−1,101]×[2,8]: 400 proper crossings (the kernel starts with room for 64). Each tooth is
    # 1 − y/10 wide at height y: ∫₂⁸ (1 − y/10) dy = 6 − (64 − 4)/20 = 3 m², × 100 = 300 m²
    teeth = [(i + d, h) for i in range(100) for d, h in ((0, 0), (0.5, 10))]
    comb = _at(shapely.Polygon([(0, -1), (100, -1), (100, 0), *teeth[::-1]]))
    got = _fast_and_degenerate([comb], [_box(-1, 2, 101, 8)])
    assert got[0][0] == pytest.approx(300, abs=1e-7) and not got[1][0]


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


def _touching(a, b):
    """The kernel for boundaries that touch: its area, and whether it could call the pair."""
    ra, rb = Rings.of(np.array([a])), Rings.of(np.array([b]))
    areas, ok = ia_mod._touching_pair_areas(
        *ra.arrays(), *rb.arrays(), np.array([0]), np.array([0])
    )
    return areas[0], ok[0]


def test_shared_edges_are_cut_at_every_contact_and_stay_exact():
    # grid cells [x, x+10]×[y, y+10] against [20,50]×[20,70]: edges lie on each other, so the
    # crossing kernel refuses (degenerate) and the touching kernel gives exactly 100 / 0 m²
    cell, box = _box(20, 20, 30, 30), _box(20, 20, 50, 70)
    assert _fast_and_degenerate([cell], [box])[1][0]
    assert _touching(cell, box) == (pytest.approx(100, abs=1e-8), True)
    cells = [_box(x, y, x + 10, y + 10) for x in range(0, 100, 10) for y in range(0, 100, 10)]
    areas = _areas(cells, [box])[:, 0]
    # 3 columns × 5 rows of cells lie inside: 15 × 100 = 1,500 m², the box's area
    assert areas.sum() == pytest.approx(30 * 50, abs=1e-6)
    assert sorted(set(np.round(areas, 6))) == [0, 100]


@pytest.mark.parametrize(
    "a, b, expected",
    [
        # the same square twice: every edge shared in the same direction, 10 × 10 = 100
        ((0, 0, 10, 10), (0, 0, 10, 10), 100),
        # neighbours sharing the edge x = 10 (opposite directions): no area, exactly
        ((0, 0, 10, 10), (10, 0, 20, 10), 0),
        # corners touching at (10, 10) only
        ((0, 0, 10, 10), (10, 10, 20, 20), 0),
        # bottom and top edges partly on each other: [5,10]×[0,10] = 5 × 10 = 50
        ((0, 0, 10, 10), (5, 0, 15, 10), 50),
        # a strip inside along the left edge: [0,2]×[3,7] = 2 × 4 = 8
        ((0, 0, 10, 10), (0, 3, 2, 7), 8),
        # a strip outside along the left edge, one edge on x = 0 between two of A's vertices
        ((0, 0, 10, 10), (-2, 3, 0, 7), 0),
    ],
)
def test_touching_boxes(a, b, expected):
    area, ok = _touching(_box(*a), _box(*b))
    assert ok and area == pytest.approx(expected, abs=1e-8)
    assert _areas([_box(*a)], [_box(*b)])[0, 0] == pytest.approx(expected, abs=1e-8)


def test_vertex_on_the_other_boundary_is_cut_there():
    # a triangle whose apex lies exactly on the square's top edge
    tri = _at(shapely.Polygon([(2, 0), (8, 0), (5, 10)]))
    assert _fast_and_degenerate([tri], [_box(0, 2, 10, 10)])[1][0]
    # triangle above y = 2: similar triangle of height 8 and base 6 × 8/10 = 4.8: ½·4.8·8 = 19.2
    assert _touching(tri, _box(0, 2, 10, 10)) == (pytest.approx(19.2, abs=1e-8), True)
    assert _areas([tri], [_box(0, 2, 10, 10)])[0, 0] == pytest.approx(19.2, abs=1e-8)


def test_a_hole_filled_by_the_other_polygon():
    # A: [0,10]² minus the hole [2,4]²; B: the hole itself, and B': [2,4]×[2,6], half in the hole
    a = _at(shapely.Polygon(shapely.box(0, 0, 10, 10).exterior.coords,
                            [shapely.box(2, 2, 4, 4).exterior.coords]))  # fmt: skip
    assert _touching(a, _box(2, 2, 4, 4)) == (pytest.approx(0, abs=1e-8), True)
    # B' ∩ A = [2,4]×[4,6] = 2 × 2 = 4
    assert _touching(a, _box(2, 2, 4, 6)) == (pytest.approx(4, abs=1e-8), True)


def test_too_close_to_call_goes_to_geos():
    # B's edge x = 10 + 5 µm runs beside A's edge x = 10: farther than DEGENERATE_M (1 µm), nearer
    # than GRAY_M (10 µm): the kernel does not guess, GEOS gives 0 m²
    assert not _touching(_box(0, 0, 10, 10), _box(10 + 5e-6, 0, 20, 10))[1]
    assert _areas([_box(0, 0, 10, 10)], [_box(10 + 5e-6, 0, 20, 10)])[0, 0] == 0
    # B's edge 5 µm inside A: the strip [10 − 5e-6, 10]×[2,8], 5e-6 × 6 = 3e-5 m² (to 1e-4:
    # 5 µm is held to ~2e-10 m at x ≈ 1.2e6 m)
    got = _areas([_box(0, 0, 10, 10)], [_box(10 - 5e-6, 2, 20, 8)])[0, 0]
    assert got == pytest.approx(5e-6 * 6, rel=1e-4)
    # a triangle's corner 0.3 µm inside A's top edge: B's edges cross that edge 0.12 µm either
    # side of the corner; pieces that short, that near a boundary, are left to GEOS too
    tri = _at(shapely.Polygon([(5, 10 - 3e-7), (7, 15), (3, 15)]))
    assert not _touching(_box(0, 0, 10, 10), tri)[1]


def test_vertex_a_rounding_off_the_edge_counts_as_on_it():
    # a T-junction as rounding leaves it: the triangle's corner 1 nm inside A's top edge (a
    # couple of units in the last place at these coordinates). The pieces of the edge it cuts
    # off are shorter than TINY_M and are called as they come; the true area, the sliver
    # ½ · (4 × 1e-9 / 5) · 1e-9 ≈ 4e-19 m², is zero to rounding
    tri = _at(shapely.Polygon([(5, 10 - 1e-9), (7, 15), (3, 15)]))
    area, ok = _touching(_box(0, 0, 10, 10), tri)
    assert ok and area == pytest.approx(0, abs=1e-9)
    # and the same corner with the square's other neighbour, [0,10]×[10,20]: the triangle's
    # part above y = 10, ½ · 4 · 5 = 10 m²
    area, ok = _touching(_box(0, 10, 10, 20), tri)
    assert ok and area == pytest.approx(10, abs=1e-8)


def test_a_sliver_of_the_other_polygon_goes_to_geos():
    # B: a sliver 6 m long and 5 nm thin across A's top edge y = 10: both of B's long edges lie
    # within DEGENERATE_M of A's edge, in opposite directions, so which one A's edge "runs along"
    # is rounding — and it decides a term of ±30 m² (half of 6 m × 10 m). Too close to call: GEOS,
    # whose answer is B's half inside A, 6 m × ~3 nm ≈ 1.8e-8 m².
    a = _box(0, 0, 10, 10)
    sliver = _at(shapely.box(2, 10 - 3e-9, 8, 10 + 2e-9))
    assert not _touching(a, sliver)[1]
    assert _areas([a], [sliver])[0, 0] == pytest.approx(6 * 3e-9, abs=1e-8)
    # a spike as GEOS's difference leaves them (3e-11 m wide), found by fuzzing: B touches A along
    # A's edges only, so they share no area (the kernel gave 10.8 m² before)
    a = shapely.from_wkt(
        "POLYGON ((1234674.410589944 3456822.4546733336, 1234663.259032166 3456858.258203315, "
        "1234627.4555021848 3456847.106645537, 1234638.6070599628 3456811.303115556, "
        "1234674.410589944 3456822.4546733336))"
    )
    b = shapely.from_wkt(
        "POLYGON ((1234663.259032166 3456858.258203315, 1234627.4555021848 3456847.106645537, "
        "1234638.6070599628 3456811.303115556, 1234651.5013875638 3456815.319251376, "
        "1234567 3456789, 1234500.0906533324 3457003.821179888, "
        "1234726.0633909986 3457034.9269965743, 1234781.8211798882 3456855.9093466676, "
        "1234674.410589944 3456822.4546733336, 1234663.259032166 3456858.258203315))"
    )
    assert shapely.area(shapely.intersection(a, b)) == pytest.approx(0, abs=1e-6)
    assert _areas([a], [b])[0, 0] == pytest.approx(0, abs=1e-6)


def test_touching_partitions_match_geos():
    # a Voronoi partition, and a second one made from it as a later land-use map is: some cells
    # kept, some cut in two (new vertices on old edges: T-junctions), some merged in pairs
    rng = np.random.default_rng(3)
    frame = shapely.box(0, 0, 5000, 5000)
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(rng.uniform(0, 5000, (600, 2))), extend_to=frame))  # fmt: skip
    cells = _at(shapely.intersection(cells, frame))
    later = list(cells[:200])
    for g in cells[200:400]:
        c = shapely.centroid(g)
        half = shapely.box(c.x - 500, c.y - 500, c.x, c.y + 500)
        later += [shapely.intersection(g, half), shapely.difference(g, half)]
    later += [shapely.union(g, h) for g, h in zip(cells[400:500], cells[500:600])]
    later = np.array([g for g in later if not g.is_empty])
    i, j = shapely.STRtree(later).query(cells)
    got = intersection_areas(cells, later, i, j)
    ref = shapely.area(shapely.intersection(cells[i], later[j]))
    assert len(i) > 3000 and (ref > 1).sum() > 700
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-6)
    # and the touching kernel called them all: no pair was left to GEOS
    ra, rb = Rings.of(cells), Rings.of(later)
    _, flags, _ = ia_mod._pair_areas(*ra.arrays(), *rb.arrays(), i, j)
    _, ok = ia_mod._touching_pair_areas(*ra.arrays(), *rb.arrays(), i[flags], j[flags])
    assert flags.sum() > 2000 and ok.all()


def test_large_pairs_are_left_to_geos(monkeypatch):
    # two discs of 513 vertices each: 513² > MAX_KERNEL_WORK, so GEOS computes the pair (the
    # kernels would test edges against edges); a small square against a disc stays in the kernel
    a = _at(shapely.Point(0, 0).buffer(100, quad_segs=128))
    b = _at(shapely.Point(50, 0).buffer(100, quad_segs=128))
    square = _box(-10, -10, 10, 10)  # inside disc a: 20 × 20 = 400 m²
    seen = []
    kernel = ia_mod._pair_areas
    monkeypatch.setattr(
        ia_mod, "_pair_areas", lambda *args: seen.append(len(args[-1])) or kernel(*args)
    )
    got = intersection_areas(np.array([a, square]), np.array([b, a]), [0, 1], [0, 1])
    assert got[0] == shapely.area(shapely.intersection(a, b))  # GEOS's own number
    assert got[1] == pytest.approx(400, abs=1e-8)
    assert seen == [1]  # only the square's pair reached the kernel


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
