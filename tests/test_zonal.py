"""Zonal areas on shapes whose areas can be written down; dask equals serial, bit for bit."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import pipeline.zonal.vector as zonal_module
from pipeline.geom.identical import identical_polygons
from pipeline.runtime.engine import Engine
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS
from pipeline.zonal.vector import (
    MAX_PIECE_VERTICES,
    _pieces,
    _polygons_only,
    zonal_areas,
)

CRS = DEFAULT_EQUAL_AREA_CRS


def _counties(geoms, ids=None) -> gpd.GeoDataFrame:
    ids = ids or [f"c{i}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({"county_id": ids}, geometry=geoms, crs=CRS)


def _landuse(codes, geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"class_code": codes}, geometry=geoms, crs=CRS)


def _as_dict(df: pd.DataFrame) -> dict:
    return {(r.county_id, r.year, r.class_code): r.area_ha for r in df.itertuples()}


def test_inside_crossing_and_outside_polygons():
    # county [0, 1000] × [0, 1000] m = 100 ha
    county = _counties([shapely.box(0, 0, 1000, 1000)])
    lu = _landuse(
        [21, 31, 41, 12],
        [
            shapely.box(100, 100, 300, 300),  # inside: 200 × 200 m = 4 ha
            shapely.box(900, 0, 1100, 500),  # crosses the east edge: 100 × 500 m inside = 5 ha
            shapely.box(2000, 0, 3000, 1000),  # outside: nothing
            shapely.box(0, 500, 500, 1000),  # touches the boundary from inside: 500 × 500 = 25 ha
        ],
    )
    got = _as_dict(zonal_areas(county, {2010: lu}, Engine(workers=1, progress=False)).class_areas)
    assert got == pytest.approx(
        {("c0", 2010, 21): 4.0, ("c0", 2010, 31): 5.0, ("c0", 2010, 12): 25.0}
    )


def test_large_county_is_cut_into_pieces_without_changing_areas():
    # A disc of radius 5 km with 4 × 300 + 1 vertices, far more than MAX_PIECE_VERTICES; four
    # quadrant patches of different classes. By symmetry each quadrant holds a quarter of the disc.
    disc = shapely.Point(0, 0).buffer(5000, quad_segs=300)
    assert shapely.get_num_coordinates(disc) > 4 * MAX_PIECE_VERTICES
    quadrants = [
        shapely.box(0, 0, 6000, 6000),
        shapely.box(-6000, 0, 0, 6000),
        shapely.box(-6000, -6000, 0, 0),
        shapely.box(0, -6000, 6000, 0),
    ]
    lu = _landuse([21, 22, 23, 24], quadrants)
    got = zonal_areas(_counties([disc]), {2018: lu}, Engine(workers=1, progress=False)).class_areas
    quarter_ha = disc.area / 4 / 1e4  # ≈ π · 5000² / 4 m² = 1963.5 ha
    assert got["area_ha"].to_numpy() == pytest.approx([quarter_ha] * 4, rel=1e-9)
    assert got["area_ha"].sum() == pytest.approx(disc.area / 1e4, rel=1e-12)


def _random_case(seed: int, n_counties: int = 12, n_points: int = 3000):
    """A 60 km × 40 km area cut into jagged counties and a Voronoi land-use partition."""
    rng = np.random.default_rng(seed)
    frame = shapely.box(0, 0, 60_000, 40_000)
    seeds = shapely.points(rng.uniform((0, 0), (60_000, 40_000), size=(n_counties, 2)))
    counties = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame)),
        frame,
    )
    pts = shapely.points(rng.uniform((0, 0), (60_000, 40_000), size=(n_points, 2)))
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=frame)),
        frame,
    )
    codes = rng.choice([12, 21, 22, 31, 43, 51], size=len(cells))
    return _counties(list(counties)), _landuse(codes, list(cells)), frame


def test_dask_threads_equal_serial_exactly_and_areas_are_conserved():
    counties, lu, _ = _random_case(7)
    serial = zonal_areas(counties, {2010: lu}, Engine(workers=1, progress=False)).class_areas
    threaded = zonal_areas(
        counties, {2010: lu}, Engine(workers=2, progress=False), partition_size=3
    ).class_areas
    pd.testing.assert_frame_equal(serial, threaded, check_exact=True)
    # the land use tiles the frame, so each county's classes sum to its area
    per_county = serial.groupby("county_id")["area_ha"].sum()
    expected = pd.Series(counties.area.to_numpy() / 1e4, index=counties["county_id"])
    np.testing.assert_allclose(per_county[expected.index], expected, rtol=1e-9)


def test_row_order_does_not_change_a_single_bit():
    counties, lu, _ = _random_case(11)
    a = zonal_areas(counties, {2010: lu}, Engine(workers=1, progress=False)).class_areas
    shuffled = lu.sample(frac=1.0, random_state=3).reset_index(drop=True)
    b = zonal_areas(
        counties.iloc[::-1], {2010: shuffled}, Engine(workers=2, progress=False)
    ).class_areas
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_pieces_tile_the_county_exactly():
    # a disc of radius 5 km with a 1 km hole, plus a separate 2 km square: 1,200+ vertices
    disc = shapely.Point(0, 0).buffer(5000, quad_segs=300)
    county = shapely.MultiPolygon(
        [
            disc.difference(shapely.Point(0, 0).buffer(1000, quad_segs=50)),
            shapely.box(6e3, 0, 8e3, 2e3),
        ]
    )
    pieces, owner = _pieces(np.array([county]), np.array([7]))
    assert len(pieces) > 4 and set(owner) == {7}
    assert shapely.is_valid(pieces).all()
    assert shapely.get_num_coordinates(pieces).max() <= MAX_PIECE_VERTICES + 8  # + cut corners
    # the pieces add up to the county and do not overlap: their union has the same area
    assert shapely.area(pieces).sum() == pytest.approx(county.area, rel=1e-12)
    assert shapely.union_all(pieces).area == pytest.approx(county.area, rel=1e-12)


def test_clipping_leftovers_without_area_are_dropped():
    # clip_by_rect along a county edge can return lines and points, with or without polygons
    line, point = shapely.LineString([(0, 0), (1, 1)]), shapely.Point(3, 3)
    assert _polygons_only(shapely.GeometryCollection([line, point])).is_empty
    kept = _polygons_only(shapely.GeometryCollection([shapely.box(0, 0, 1, 1), point]))
    assert kept.area == 1.0  # the 1 × 1 square


def test_identical_polygons_match_one_to_one():
    # later: [A, B, A, A reversed]; first: [B, A] → A matches first[1] once, B first[0]; the
    # second copy of A is new area (−1); a reversed ring is another representation (−1)
    a, b = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    a_rev = shapely.Polygon(a.exterior.coords[::-1])
    got = identical_polygons(np.array([a, b, a, a_rev]), np.array([b, a]))
    assert got.tolist() == [1, 0, -1, -1]


def test_transfer_matrix_where_changed_polygons_share_edges_and_cross_counties():
    # counties c0 = [0,1000]×[0,1000] and c1 = [1000,2000]×[0,1000] m (100 ha each). 2010: forest
    # A = [0,500], paddy B = [500,1500] (across the county line), grass C = [1500,2000] (all
    # × [0,1000]). 2018: A and C unchanged; B split at x = 800 into paddy [500,800] and built-up
    # [800,1500], whose edges lie on B's: the kernel for touching boundaries takes those pairs.
    counties = _counties([shapely.box(0, 0, 1000, 1000), shapely.box(1000, 0, 2000, 1000)])
    a, b, c = (shapely.box(x0, 0, x1, 1000) for x0, x1 in ((0, 500), (500, 1500), (1500, 2000)))
    lu = {
        2010: _landuse([21, 11, 31], [a, b, c]),
        2018: _landuse(
            [21, 11, 51, 31],
            [a, shapely.box(500, 0, 800, 1000), shapely.box(800, 0, 1500, 1000), c],
        ),
    }
    res = zonal_areas(counties, lu, Engine(workers=1, progress=False), transitions=(2010, 2018))
    got = {(r.county_id, r.from_code, r.to_code): r.area_ha for r in res.transitions.itertuples()}
    # c0: A 500 × 1000 m = 50 ha stays forest; B's part [500,1000]: 300 m × 1000 m = 30 ha stays
    # paddy, 200 m = 20 ha becomes built-up. c1: B's part [1000,1500] = 50 ha becomes built-up,
    # C = 50 ha stays grass. Nothing else, not even rounding rows.
    assert got == pytest.approx(
        {("c0", 21, 21): 50, ("c0", 11, 11): 30, ("c0", 11, 51): 20,
         ("c1", 11, 51): 50, ("c1", 31, 31): 50}, abs=1e-9,
    )  # fmt: skip


def test_a_level_that_clip_by_rect_cannot_cut_is_cut_exactly(monkeypatch):
    # found by fuzzing: cutting this multipolygon (45° edges, a part's corner on the cut line) at
    # x = 1234524.57… makes GEOS' clip_by_rect fail ("Invalid number of points in LinearRing
    # found 3"); that level is then cut by exact intersection, and the pieces still add up to it
    county = shapely.from_wkt(
        "MULTIPOLYGON (((1234506.8959235987 3456870.317279836, 1234510.431457505 "
        "3456873.8528137426, 1234513.9669914115 3456870.317279836, 1234506.8959235987 "
        "3456870.317279836)), ((1234524.5735931287 3456887.994949366, 1234531.6446609406 "
        "3456880.923881554, 1234538.7157287525 3456887.994949366, 1234531.6446609406 "
        "3456895.066017178, 1234524.5735931287 3456887.994949366)), ((1234482.1471862576 "
        "3456873.8528137426, 1234489.2182540696 3456880.923881554, 1234496.2893218813 "
        "3456873.8528137426, 1234492.7537879748 3456870.317279836, 1234485.682720164 "
        "3456870.317279836, 1234482.1471862576 3456873.8528137426)))"
    )
    box = (1234482.1471862576, 3456870.317279836, 1234524.573593129, 3456951.634559673)
    with pytest.raises(shapely.errors.GEOSException):
        shapely.clip_by_rect(county, *box)

    # every cut of the county fails as that one did: each level is cut exactly instead
    def fails(*args):
        raise shapely.errors.GEOSException("Invalid number of points in LinearRing found 3")

    monkeypatch.setattr(shapely.lib, "clip_by_rect", fails)
    monkeypatch.setattr(zonal_module, "MAX_PIECE_VERTICES", 6)  # 17 vertices: cut
    pieces, owner = _pieces(np.array([county]), np.array(["c0"]))
    assert len(pieces) > 1 and set(owner) == {"c0"}
    assert shapely.area(pieces).sum() == pytest.approx(county.area, rel=1e-9)


def test_residuals_ignore_no_data_rows_without_a_false_warning(caplog):
    """County A: class 21 is 10 ha in the base year and 6 ha in the target year, whose other 4 ha
    are no data (a raster's cells with data in one year only: rows 21 → 0). Base: 6 + 4 = 10 =
    the class area; target: 6 = the class area. Nothing to add and nothing exceeds."""
    import logging

    from pipeline.zonal.vector import add_residuals

    class_areas = pd.DataFrame(
        {"county_id": ["A", "A"], "year": [2010, 2018], "class_code": [21, 21],
         "area_ha": [10.0, 6.0]}
    )  # fmt: skip
    trans = pd.DataFrame(
        {"county_id": ["A", "A"], "from_code": [21, 21], "to_code": [21, 0], "area_ha": [6.0, 4.0]}
    )
    with caplog.at_level(logging.WARNING):
        out = add_residuals(trans, class_areas, 2010, 2018)
    assert "exceed" not in caplog.text
    assert out[["from_code", "to_code", "area_ha"]].values.tolist() == [[21, 0, 4.0], [21, 21, 6.0]]
