"""Property-based tests (hypothesis): areas are conserved, splitting or reordering land-use polygons
changes nothing, and scaling every coefficient by c scales M by c."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.accounting.vouchers import account
from pipeline.runtime.engine import Engine
from pipeline.settings.coefficients import Coefficients
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS, Config
from pipeline.zonal.vector import zonal_areas

CODES = [11, 12, 21, 22, 31, 33, 41, 43, 51, 64]
SERIAL = Engine(workers=1, progress=False)
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    """A county (random convex polygon inside a 10 km square) and a grid of land-use cells that
    covers the square, with random codes."""
    pts = draw(
        st.lists(st.tuples(st.floats(500, 9500), st.floats(500, 9500)), min_size=3, max_size=12)
    )
    county = shapely.convex_hull(shapely.multipoints(pts))
    if shapely.area(county) < 1e4:  # degenerate (collinear points): a 1 km square instead
        county = shapely.box(1000, 1000, 2000, 2000)
    nx, ny = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    xs, ys = np.linspace(0, 10_000, nx + 1), np.linspace(0, 10_000, ny + 1)
    cells = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(nx) for j in range(ny)]
    codes = draw(st.lists(st.sampled_from(CODES), min_size=len(cells), max_size=len(cells)))
    return county, cells, codes


def _areas(county, cells, codes) -> pd.Series:
    counties = gpd.GeoDataFrame({"county_id": ["c"]}, geometry=[county], crs=DEFAULT_EQUAL_AREA_CRS)
    lu = gpd.GeoDataFrame({"class_code": codes}, geometry=cells, crs=DEFAULT_EQUAL_AREA_CRS)
    ca = zonal_areas(counties, {2010: lu}, SERIAL).class_areas
    return ca.set_index("class_code")["area_ha"]


@FAST
@given(cases())
def test_class_areas_of_a_fully_covered_county_sum_to_its_area(case):
    county, cells, codes = case
    # the grid covers the whole 10 km square, so the classes tile the county: Σ = area (m² / 10⁴)
    assert _areas(county, cells, codes).sum() == pytest.approx(county.area / 1e4, rel=1e-9)


@FAST
@given(cases(), st.data())
def test_splitting_and_reordering_polygons_changes_nothing(case, data):
    county, cells, codes = case
    before = _areas(county, cells, codes)
    i = data.draw(st.integers(0, len(cells) - 1))
    x0, y0, x1, y1 = cells[i].bounds
    cut = data.draw(st.floats(0.05, 0.95)) * (x1 - x0) + x0
    split_cells = [
        *cells[:i],
        shapely.box(x0, y0, cut, y1),
        shapely.box(cut, y0, x1, y1),
        *cells[i + 1 :],
    ]
    split_codes = [*codes[:i], codes[i], codes[i], *codes[i + 1 :]]
    order = data.draw(st.permutations(range(len(split_cells))))
    after = _areas(county, [split_cells[k] for k in order], [split_codes[k] for k in order])
    pd.testing.assert_series_equal(before, after, rtol=1e-9, check_exact=False)


@FAST
@given(cases(), cases(), st.floats(0.1, 10.0))
def test_scaling_every_coefficient_by_c_scales_m_by_c(case0, case1, c):
    county, cells0, codes0 = case0
    _, cells1, codes1 = case1
    counties = gpd.GeoDataFrame(
        {"county_id": ["c"], "name": ["x"], "province": ["p"], "city": ["q"]},
        geometry=[county],
        crs=DEFAULT_EQUAL_AREA_CRS,
    )
    counties["area_m2"] = counties.area
    lu = {
        y: gpd.GeoDataFrame({"class_code": k}, geometry=g, crs=DEFAULT_EQUAL_AREA_CRS)
        for y, g, k in ((2010, cells0, codes0), (2018, cells1, codes1))
    }
    class_areas = zonal_areas(counties, lu, SERIAL).class_areas
    socio = pd.DataFrame(
        {"gdp_yuan": [1e9], "population": [1e5]}, index=pd.Index(["c"], name="county_id")
    )
    config = Config.model_validate(
        {"years": {"base": 2010, "target": 2018}, "price_yuan_per_ha": 1,
         "national": {2018: {"gdp_per_capita_yuan": 1e4, "population_density_per_km2": 100}}}
    )  # fmt: skip
    k = {21: 1.0, 22: 0.89, 31: 0.33, 33: 0.19, 41: 2.1, 43: 2.1, 64: 2.1}
    one = account(counties, class_areas, socio, config, Coefficients(k, {}, path=None))
    scaled = {code: c * v for code, v in k.items()}
    many = account(counties, class_areas, socio, config, Coefficients(scaled, {}, path=None))
    for col in ("sf_base_ha", "sf_target_ha", "static_voucher_ha", "voucher_ha"):
        a, b = one.county_vouchers[col].iloc[0], many.county_vouchers[col].iloc[0]
        assert b == pytest.approx(c * a, rel=1e-9, abs=1e-9)
