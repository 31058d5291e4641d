"""Cell areas of raster grids in any CRS (pipeline.geom.cell_area), against hand arithmetic and
against independent geodesic computations (pyproj.Geod on finely densified polygons)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import CRS, Geod, Transformer

from pipeline.geom.cell_area import (
    INTERPOLATION_TOLERANCE,
    cell_areas,
    ellipsoid_of,
    lonlat_box_area,
)

ALBERS_KRASS = (
    "+proj=aea +lat_0=0 +lat_1=25 +lat_2=47 +lon_0=105 +x_0=0 +y_0=0 +ellps=krass +units=m +no_defs"
)
# the same Albers on GRS 1980 (CGCS2000's and, to 0.1 mm, WGS84's ellipsoid): no datum change
ALBERS_GRS80 = ALBERS_KRASS.replace("krass", "GRS80")


def geod_box_area(geod: Geod, lon0: float, lat0: float, dlon: float, dlat: float, n: int) -> float:
    """Area of a lon/lat box by Karney's geodesic polygon area, its parallels cut into n geodesic
    pieces (a geodesic bulges off a parallel; the error falls as 1/n²)."""
    lons = np.r_[np.linspace(lon0, lon0 + dlon, n), np.linspace(lon0 + dlon, lon0, n)]
    lats = np.r_[np.full(n, lat0), np.full(n, lat0 + dlat)]
    area, _ = geod.polygon_area_perimeter(lons, lats)
    return abs(area)


# --- the closed form ------------------------------------------------------------------------------


def test_sphere_by_hand():
    # sphere R = 6,371,000 m, 1° × 1° cell on the equator: A = R² Δλ (sin 1° − sin 0°)
    #   = 6371000² × 0.0174532925 × 0.0174524064 = 12,363,683,990.26 m²
    got = lonlat_box_area(math.radians(1), 0.0, math.radians(1), 6_371_000.0, 0.0)
    assert got == pytest.approx(12_363_683_990.26, rel=1e-12)
    # the whole sphere: 4πR² = 4π × 6371000² = 510,064,471,909,788 m²
    whole = lonlat_box_area(2 * math.pi, -math.pi / 2, math.pi / 2, 6_371_000.0, 0.0)
    assert whole == pytest.approx(4 * math.pi * 6_371_000.0**2, rel=1e-14)


def test_whole_ellipsoid_is_twice_a_hemisphere_by_geod():
    # WGS84: the area between the equator and either pole is the area Karney's algorithm gives
    # for the equator taken as a polygon; the whole ellipsoid is 510,065,621,724,088 m²
    geod = Geod(ellps="WGS84")
    whole = lonlat_box_area(2 * math.pi, -math.pi / 2, math.pi / 2, geod.a, geod.f)
    hemisphere, _ = geod.polygon_area_perimeter([0, 90, 180, 270], [0, 0, 0, 0])
    assert float(whole) == pytest.approx(510_065_621_724_088, rel=1e-12)
    assert float(whole) == pytest.approx(2 * abs(hemisphere), rel=1e-12)


@pytest.mark.parametrize("ellps", ["WGS84", "krass", "clrk66", "intl"])
@pytest.mark.parametrize(
    "lon0, lat0, side_deg, n",
    [
        (114.0, 38.0, 1.0, 20_000),  # a 1° cell: parallels cut into 20,000 geodesics
        (100.0, -70.0, 0.25, 5_000),  # southern, high latitude
        (10.0, 0.0, 1 / 3600, 50),  # a 1″ (~30 m) cell on the equator
        (10.0, 89.0, 1 / 120, 200),  # 30″ next to the pole
        (0.0, 45.0, 1 / 12_000, 20),  # an ESA WorldCover 0.3″ (~10 m) cell
    ],
)
def test_closed_form_against_geodesic_polygon(ellps, lon0, lat0, side_deg, n):
    geod = Geod(ellps=ellps)
    want = geod_box_area(geod, lon0, lat0, side_deg, side_deg, n)
    got = lonlat_box_area(
        math.radians(side_deg), math.radians(lat0), math.radians(lat0 + side_deg), geod.a, geod.f
    )
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_order_of_parallels_and_clipping_at_the_pole():
    a, f = 6378137.0, 1 / 298.257223563
    one = lonlat_box_area(0.01, 0.5, 0.6, a, f)
    assert lonlat_box_area(0.01, 0.6, 0.5, a, f) == pytest.approx(float(one), rel=1e-15)
    # a row reaching beyond 90° counts only up to the pole
    beyond = lonlat_box_area(0.01, math.radians(89.5), math.radians(90.5), a, f)
    at = lonlat_box_area(0.01, math.radians(89.5), math.radians(90.0), a, f)
    assert float(beyond) == float(at)


# --- geographic grids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "crs",
    [
        "EPSG:4326",
        "EPSG:4490",  # CGCS2000
        "EPSG:4214",  # Beijing 1954, Krasovsky
        "+proj=longlat +a=6378140 +rf=298.257 +no_defs",  # IAU 1976 / Xi'an 1980: no EPSG code
        "+proj=longlat +R=6371007.181 +no_defs",  # the MODIS sphere
    ],
)
def test_geographic_grid_rows_against_geod(crs):
    # 30″ cells, 40 rows from 40°N down, 3 columns
    res = 1 / 120
    grid = cell_areas(crs, (res, 0, 116.0, 0, -res, 40.0), 3, 40, ALBERS_KRASS)
    assert grid.method == "geographic" and grid.by_row
    a, f = ellipsoid_of(CRS.from_user_input(crs))
    geod = Geod(a=a, f=f)
    block = grid.block(0, 0, 40, 3)
    assert block.shape == (40, 3)
    for r in (0, 17, 39):
        want = geod_box_area(geod, 116.0, 40.0 - (r + 1) * res, res, res, 200)
        assert block[r, 0] == pytest.approx(want, rel=1e-9)
        assert block[r, 2] == block[r, 0]  # one value per row
    # rows lower down (further south) are larger
    assert np.all(np.diff(block[:, 0]) > 0)
    assert "authalic" in grid.description


def test_geographic_global_grid_sums_to_the_ellipsoid():
    # 1° global grid on CGCS2000: the cells tile the ellipsoid (a = 6378137, 1/f = 298.257222101)
    grid = cell_areas("EPSG:4490", (1.0, 0, -180.0, 0, -1.0, 90.0), 360, 180, ALBERS_KRASS)
    a, f = 6378137.0, 1 / 298.257222101
    whole = lonlat_box_area(2 * math.pi, -math.pi / 2, math.pi / 2, a, f)
    assert grid.total() == pytest.approx(float(whole), rel=1e-12)
    assert grid.rows(0, 180).sum() * 360 == pytest.approx(float(whole), rel=1e-12)


def test_geographic_grid_in_grads():
    # a CRS whose angle unit is the grad (400 per turn): 1 grad × 1 grad from the equator equals
    # 0.9° × 0.9°
    grads = CRS.from_wkt(
        'GEOGCRS["grads",DATUM["WGS 84",ELLIPSOID["WGS 84",6378137,298.257223563]],'
        'CS[ellipsoidal,2],AXIS["lon",east,ANGLEUNIT["grad",0.015707963267949]],'
        'AXIS["lat",north,ANGLEUNIT["grad",0.015707963267949]]]'
    )
    got = cell_areas(grads, (1.0, 0, 0.0, 0, -1.0, 1.0), 1, 1, ALBERS_KRASS).block(0, 0, 1, 1)
    want = lonlat_box_area(math.radians(0.9), 0.0, math.radians(0.9), 6378137.0, 1 / 298.257223563)
    assert got[0, 0] == pytest.approx(float(want), rel=1e-12)


# --- projected grids ------------------------------------------------------------------------------


def test_equal_area_grid_is_constant():
    # Albers 30 m: every cell 30 × 30 = 900 m², as before
    grid = cell_areas(ALBERS_KRASS, (30, 0, 1e6, 0, -30, 4e6), 10, 10, ALBERS_KRASS)
    assert grid.method == "equal-area"
    assert np.all(grid.block(2, 3, 4, 5) == 900.0)
    # a unit that is not the metre: US survey feet, 100 ft × 100 ft = 929.0341 m²
    # (1 US ft = 1200/3937 m: (100 × 1200/3937)² = 929.034116 m²)
    ft = CRS.from_proj4(ALBERS_GRS80.replace("+units=m", "+units=us-ft"))
    g2 = cell_areas(ft, (100, 0, 0, 0, -100, 0), 1, 1, ALBERS_KRASS)
    assert g2.block(0, 0, 1, 1)[0, 0] == pytest.approx((100 * 1200 / 3937) ** 2, rel=1e-12)


def _grid_at(crs: str, lon: float, lat: float, res: float) -> tuple:
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    return (res, 0.0, x, 0.0, -res, y)


def test_web_mercator_rows_are_lonlat_boxes():
    # Web Mercator (EPSG:3857) columns are meridians and rows parallels: each cell is a WGS84
    # lon/lat box and its area comes by row from the closed form
    t = _grid_at("EPSG:3857", 116.0, 40.0, 30.0)
    grid = cell_areas("EPSG:3857", t, 50, 50, ALBERS_GRS80)
    assert grid.method == "cylindrical" and grid.by_row
    to_geo = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    lon0, lat_top = to_geo.transform(t[2], t[5])
    lon1, lat_bottom = to_geo.transform(t[2] + 30.0, t[5] - 30.0)
    geod = Geod(ellps="WGS84")
    want = geod_box_area(geod, lon0, lat_bottom, lon1 - lon0, lat_top - lat_bottom, 50)
    assert grid.block(0, 0, 1, 1)[0, 0] == pytest.approx(want, rel=1e-9)
    # at 40°N a 30 m Web Mercator cell covers about (30 cos 40°)² ≈ 528 m² of ground
    assert grid.block(0, 0, 1, 1)[0, 0] == pytest.approx((30 * math.cos(math.radians(40))) ** 2,
                                                         rel=2e-3)  # fmt: skip
    # and the quadrilateral route (corners into an Albers on the same ellipsoid) agrees
    quad = cell_areas("EPSG:3857", (*t[:1], 1e-12, *t[2:]), 50, 50, ALBERS_GRS80)
    assert quad.method == "quadrilateral"
    np.testing.assert_allclose(quad.block(0, 0, 50, 50), grid.block(0, 0, 50, 50), rtol=1e-8)


@pytest.mark.parametrize(
    "crs, lon, lat, res",
    [
        ("EPSG:4547", 115.45, 40.0, 30.0),  # CGCS2000 3° Gauss-Krüger CM 114°E, at the zone edge
        ("EPSG:32650", 119.9, 20.0, 30.0),  # UTM 50N at its eastern edge
        ("EPSG:2154", 3.0, 46.0, 10.0),  # Lambert-93 (conformal conic), 10 m
    ],
)
def test_quadrilateral_interpolation_against_exact_corners(crs, lon, lat, res):
    n = 300
    grid = cell_areas(crs, _grid_at(crs, lon, lat, res), n, n, ALBERS_GRS80)
    assert grid.method == "quadrilateral" and not grid.by_row
    got = grid.block(0, 0, n, n)
    exact = grid._quad.exact(np.arange(n), np.arange(n))
    assert np.max(np.abs(got / exact - 1)) < 10 * INTERPOLATION_TOLERANCE  # far below 1e-6
    # a window is the same whether asked for alone or inside a larger one (to the tolerance)
    part = grid.block(100, 50, 70, 90)
    np.testing.assert_allclose(part, exact[100:170, 50:140], rtol=10 * INTERPOLATION_TOLERANCE)


def test_gauss_kruger_quadrilateral_against_geodesic_area():
    # a 30 m CGCS2000 Gauss-Krüger cell 1.5° east of the central meridian: its edges, straight in
    # the projection, densified and taken back to lon/lat, then Karney's polygon area on GRS 1980
    crs = "EPSG:4547"
    t = _grid_at(crs, 115.5, 40.0, 30.0)
    grid = cell_areas(crs, t, 4, 4, ALBERS_GRS80)
    x0, y0 = t[2], t[5]
    s = np.linspace(0.0, 30.0, 31)
    xs = np.r_[x0 + s, np.full(31, x0 + 30.0), x0 + 30.0 - s, np.full(31, x0)]
    ys = np.r_[np.full(31, y0), y0 - s, np.full(31, y0 - 30.0), y0 - 30.0 + s]
    lon, lat = Transformer.from_crs(crs, "EPSG:4490", always_xy=True).transform(xs, ys)
    want, _ = Geod(ellps="GRS80").polygon_area_perimeter(lon, lat)
    assert grid.block(0, 0, 1, 1)[0, 0] == pytest.approx(abs(want), rel=1e-7)
    # 1.5° from the central meridian at 40°N the Gauss-Krüger scale is about
    # 1 + (1.5° × cos 40° in radians)² / 2 = 1 + 0.02006² / 2 = 1.000201, so a 900 m² cell of the
    # map covers 900 / 1.000201² ≈ 899.64 m² of ground
    assert grid.block(0, 0, 1, 1)[0, 0] == pytest.approx(899.64, abs=0.02)


def test_rotated_geographic_grid_takes_the_quadrilateral_route():
    grid = cell_areas("EPSG:4326", (1 / 3600, 1e-9, 116.0, 0.0, -1 / 3600, 40.0), 20, 20,
                      ALBERS_GRS80)  # fmt: skip
    assert grid.method == "quadrilateral"
    plain = cell_areas("EPSG:4326", (1 / 3600, 0.0, 116.0, 0.0, -1 / 3600, 40.0), 20, 20,
                       ALBERS_GRS80)  # fmt: skip
    # the shear is negligible here: both routes give the lon/lat box areas to 1e-7
    np.testing.assert_allclose(grid.block(0, 0, 20, 20), plain.block(0, 0, 20, 20), rtol=1e-7)


def test_windows_outside_the_grid_are_refused():
    grid = cell_areas("EPSG:4326", (1.0, 0, 0.0, 0, -1.0, 10.0), 5, 5, ALBERS_KRASS)
    with pytest.raises(ValueError, match="leaves"):
        grid.block(3, 0, 3, 1)
