"""The overlap screen (pipeline.geom.overlap_screen) on shapes drawn by hand: a clean partition flags nothing,
an overlap flags a polygon over it."""

import numpy as np
import pytest
import shapely

from pipeline.geom.overlap_screen import overlap_suspects


def _suspects(*geoms):
    return set(overlap_suspects(np.array(geoms, dtype=object)).tolist())


def test_clean_partition_with_a_hole_and_its_island():
    # [0,10]² with the hole [4,6]², the island [4,6]² filling it, and [10,20]×[0,10] beside it:
    # every inner edge appears once each way, and no polygon lies outside the outer edges
    ring = shapely.Polygon(shapely.box(0, 0, 10, 10).exterior, [shapely.box(4, 4, 6, 6).exterior])
    assert _suspects(ring, shapely.box(4, 4, 6, 6), shapely.box(10, 0, 20, 10)) == set()


def test_rings_stored_either_way_round():
    a = shapely.Polygon(shapely.box(0, 0, 10, 10).exterior.coords[::-1])  # clockwise
    assert _suspects(a, shapely.box(10, 0, 20, 10)) == set()


@pytest.mark.parametrize(
    "second, expected",
    [
        (shapely.box(0, 0, 10, 10), {0, 1}),  # an exact duplicate: same edges, same direction
        (shapely.box(2, 2, 3, 3), {0, 1}),  # an island inside without a hole for it
        (shapely.box(9, 0, 19, 10), {0, 1}),  # overlapping strip [9,10]×[0,10]
        (shapely.box(10, 0, 20, 10), set()),  # sharing an edge
        (shapely.box(10, 10, 20, 20), set()),  # touching at a corner
        (shapely.box(11, 0, 21, 10), set()),  # apart
    ],
)
def test_second_square_against_the_first(second, expected):
    assert _suspects(shapely.box(0, 0, 10, 10), second) == expected


def test_t_junction_is_suspect_but_not_an_overlap():
    # [0,1]×[0,2] beside [1,2]×[0,1] and [1,2]×[1,2]: the long edge x = 1 meets two short ones,
    # so none is matched; suspect (the exact pair test clears it later), never missed
    left, low, high = shapely.box(0, 0, 1, 2), shapely.box(1, 0, 2, 1), shapely.box(1, 1, 2, 2)
    assert _suspects(left, low, high) == {0, 1, 2}


def test_overlap_hidden_by_an_equal_gap_is_found():
    # [0,10]×[0,10] split as [0,5] and [4,10] (1 × 10 = 10 m² twice) with a 10 m² gap elsewhere:
    # the areas still sum to the frame's, but the edges give the overlap away
    a, b = shapely.box(0, 0, 5, 10), shapely.box(4, 0, 10, 10)
    gap_neighbour = shapely.box(10, 0, 20, 9)  # leaves [10,20]×[9,10] empty
    assert {0, 1} <= _suspects(a, b, gap_neighbour)


def test_random_partitions_with_a_planted_overlap():
    rng = np.random.default_rng(3)
    frame = shapely.box(0, 0, 1000, 1000)
    for _ in range(20):
        pts = shapely.multipoints(rng.uniform(0, 1000, size=(300, 2)))
        cells = shapely.intersection(
            shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame)), frame
        )
        assert len(overlap_suspects(cells)) == 0
        k = int(rng.integers(len(cells)))
        grown = cells.copy()
        grown[k] = shapely.buffer(cells[k], float(rng.uniform(0.01, 5)))
        truth = np.flatnonzero(
            shapely.area(shapely.intersection(grown[k], np.delete(grown, k))) > 0
        )
        truth = {k} | {int(i + (i >= k)) for i in truth}  # indices before the deletion
        # one connected overlap region around cell k: flagged polygons are over it
        flagged = set(overlap_suspects(grown).tolist())
        assert k in flagged and flagged <= truth


def test_a_subset_is_screened_among_itself():
    # [0,10]², its duplicate and [10,20]×[0,10]: the duplicate overlaps, unless left out (the
    # neighbour is flagged too: the edge x = 10 is there three times)
    geoms = np.array(
        [shapely.box(0, 0, 10, 10), shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)]
    )
    assert set(overlap_suspects(geoms).tolist()) == {0, 1, 2}
    assert len(overlap_suspects(geoms, subset=np.array([0, 2]))) == 0


def test_near_copy_with_extra_vertices_a_few_ulps_off_is_found():
    # Q is the triangle P with a vertex added on each edge, each a few units in the last place
    # off the edge (found by the reviewer's fuzzing): Q overlaps P almost wholly (2,720 m²), but
    # P's edges lie in slivers of Q thinner than rounding, where a midpoint test without a margin
    # missed it
    p = shapely.from_wkt(
        "POLYGON ((-1420822.17563889 2346192.100567234, -1420890.437091711 2346124.8065159675, "
        "-1420835.2185020887 2346099.5523831043, -1420822.17563889 2346192.100567234))"
    )
    q = shapely.from_wkt(
        "POLYGON ((-1420822.17563889 2346192.100567234, -1420857.358786861 2346157.4160349625, "
        "-1420890.437091711 2346124.8065159675, -1420846.4709892264 2346104.69868994, "
        "-1420835.2185020887 2346099.5523831043, -1420825.5732427204 2346167.992205433, "
        "-1420822.17563889 2346192.100567234))"
    )
    assert shapely.area(shapely.intersection(p, q)) > 2700
    assert _suspects(p, q) == {0, 1}


def test_screen_against_shapely_coverage_validation():
    """The screen (numba) against GEOS' coverage validation (shapely.coverage_is_valid and
    coverage_invalid_edges) on random Voronoi partitions of a 1 km square, each then spoiled one
    way: a cell grown (overlaps), shrunk (gaps only) or one vertex moved (both).

    - a valid coverage: GEOS finds no invalid edge and the screen flags nothing;
    - where cells overlap, GEOS finds the coverage invalid, and every pair of cells whose interiors share area (GEOS intersection) has a flagged cell;
    - the screen raises no alarm GEOS does not: a flagged cell has an invalid edge, or truly
      overlaps another cell (GEOS reports only the cell whose edges cross: a neighbour whose own
      edges all stay matched is not listed, though the grown cell reaches into it);
    - gaps alone are not the screen's business: GEOS finds them (with a gap width), the screen
      flags nothing."""
    rng = np.random.default_rng(11)
    frame = shapely.box(0, 0, 1000, 1000)
    seen = {"grow": 0, "shrink": 0, "shift": 0}
    for _ in range(25):
        pts = shapely.multipoints(rng.uniform(0, 1000, size=(150, 2)))
        cells = shapely.intersection(
            shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame)), frame
        )
        assert shapely.coverage_is_valid(cells)
        assert len(overlap_suspects(cells)) == 0
        for kind in seen:
            spoilt = cells.copy()
            k = int(rng.integers(len(cells)))
            if kind == "grow":
                spoilt[k] = shapely.buffer(cells[k], float(rng.uniform(0.01, 5)))
            elif kind == "shrink":
                spoilt[k] = shapely.buffer(cells[k], -float(rng.uniform(0.01, 5)))
            else:
                xy = shapely.get_coordinates(cells[k])
                v = int(rng.integers(len(xy) - 1))
                xy[v] += rng.uniform(-3, 3, 2)
                xy[-1] = xy[0]
                spoilt[k] = shapely.Polygon(xy)
                if not shapely.is_valid(spoilt[k]):
                    continue
            seen[kind] += 1
            invalid = set(np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(spoilt))))
            flagged = set(overlap_suspects(spoilt).tolist())
            a, b = shapely.STRtree(spoilt).query(spoilt, predicate="intersects")
            a, b = a[a < b], b[a < b]
            shared = shapely.area(shapely.intersection(spoilt[a], spoilt[b])) > 0
            overlapping = {int(i) for i in np.r_[a[shared], b[shared]]}
            if overlapping:
                assert not shapely.coverage_is_valid(spoilt) and invalid
            for i, j in zip(a[shared], b[shared]):
                assert {int(i), int(j)} & flagged, (kind, i, j)
            assert flagged <= invalid | overlapping, (kind, flagged - invalid - overlapping)
            if kind == "shrink":  # GEOS sees the gap when asked to (gap_width), the screen not
                assert not overlapping and not flagged
                assert not shapely.coverage_is_valid(spoilt, gap_width=10)
    assert min(seen.values()) >= 15
