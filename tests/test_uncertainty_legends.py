"""The Monte Carlo with the two years in two legends: 二调 (GB/T 21010-2007) 2009 → 三调 2019, with
the shipped coefficient files of both (pipeline/accounting/draws.py, docs/method.md §1.7).

Two counties of 10 km × 10 km = 10,000 ha, each with 10,000 persons and GDP 5e8 yuan, against
national values 50,000 yuan per person and 100 persons/km², so G = P = 1 and E = ΔM:

    X  2009: "031" 有林地 3000, "041" 天然牧草地 1000, "011" 水田 6000
       2019: "0301" 乔木林地 3000, "0401" 天然牧草地 500, "0305" 灌木林地 500, "0101" 水田 6000
       ΔM_X = (3000·1.00 + 500·0.28 + 500·0.89) − (3000·1.00 + 1000·0.28)
            = 3585 − 3280 = +305
    Y  2009: "031" 2000, "011" 8000  →  2019: "0301" 2000, "0101" 8000   (only the legend changed)
       ΔM_Y = 2000·1.00 − 2000·1.00 = 0

Table 1 rows of the codes (``resdc:`` of the shipped files): 031 and 0301 → 21 有林地 (k 1.00),
041 and 0401 → 32 中覆盖度草地 (0.28), 0305 → 22 灌木林 (0.89).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from conftest import box_km
from pipeline.accounting.draws import plan_draws
from pipeline.accounting.uncertainty import monte_carlo
from pipeline.accounting.vouchers import account
from pipeline.errors import InputError
from pipeline.settings.coefficients import load_coefficients
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS, Config, UncertaintyConfig
from pipeline.settings.legends import load_legend, shipped_coefficients

ERDIAO = load_coefficients(shipped_coefficients(load_legend("gbt21010_2007")))
SANDIAO = load_coefficients(shipped_coefficients(load_legend("sandiao")))
K = (ERDIAO, SANDIAO)
NATIONAL = (50000.0, 100.0)
PRICE = 50000.0
AREAS = [
    ("X", 2009, "031", 3000.0), ("X", 2009, "041", 1000.0), ("X", 2009, "011", 6000.0),
    ("X", 2019, "0301", 3000.0), ("X", 2019, "0401", 500.0), ("X", 2019, "0305", 500.0),
    ("X", 2019, "0101", 6000.0),
    ("Y", 2009, "031", 2000.0), ("Y", 2009, "011", 8000.0),
    ("Y", 2019, "0301", 2000.0), ("Y", 2019, "0101", 8000.0),
]  # fmt: skip


def accounts() -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    geoms = [box_km(0, 0, 10, 10), box_km(10, 0, 20, 10)]
    counties = gpd.GeoDataFrame(
        {
            "county_id": ["X", "Y"],
            "name": ["X县", "Y县"],
            "province": "省",
            "city": "市",
            "area_m2": [g.area for g in geoms],
        },
        geometry=geoms,
        crs=DEFAULT_EQUAL_AREA_CRS,
    )
    class_areas = pd.DataFrame(AREAS, columns=["county_id", "year", "class_code", "area_ha"])
    socio = pd.DataFrame(
        {"gdp_yuan": 5e8, "population": 10000.0}, index=pd.Index(["X", "Y"], name="county_id")
    )
    config = Config(
        years={"base": 2009, "target": 2019},
        national={2019: {"gdp_per_capita_yuan": 50000, "population_density_per_km2": 100}},
        price_yuan_per_ha=PRICE,
    )
    cv = account(counties, class_areas, socio, config, {2009: ERDIAO, 2019: SANDIAO})
    return class_areas, cv.county_vouchers


def run(cfg: UncertaintyConfig):
    class_areas, cv = accounts()
    return monte_carlo(class_areas, cv, K, NATIONAL, PRICE, cfg), cv


def test_fixture_is_the_hand_worked_one():
    _, cv = accounts()
    assert cv["gdp_coef"].tolist() == [1.0, 1.0] and cv["pop_coef"].tolist() == [1.0, 1.0]
    assert cv["voucher_ha"].to_numpy() == pytest.approx([305.0, 0.0], abs=1e-9)


def test_zero_spread_gives_the_deterministic_vouchers_bit_for_bit():
    r, cv = run(UncertaintyConfig(draws=300, seed=4))
    for p in ("p05", "p50", "p95"):
        assert (r.county_columns[f"voucher_ha_{p}"].to_numpy() == cv["voucher_ha"]).all()
        assert (r.county_columns[f"value_yuan_{p}"].to_numpy() == cv["value_yuan"]).all()
    assert r.county_columns["p_demand"].tolist() == [0.0, 0.0]


def test_crosswalked_codes_share_their_table1_row_draw():
    cfg = UncertaintyConfig(draws=2000, seed=11, coefficient_spread=0.2)
    plan = plan_draws(K, cfg)
    col = {c: j for j, c in enumerate(plan.columns)}
    # side 0 = the base year's legend (二调), side 1 = the target year's (三调)
    for old, new in (("031", "0301"), ("041", "0401")):
        assert plan.draw_column[col[0, old]] == plan.draw_column[col[1, new]]
    assert plan.draw_column[col[1, "0305"]] != plan.draw_column[col[1, "0301"]]
    # level-1 codes have no Table 1 row: each legend's "03" draws on its own
    assert plan.draw_column[col[0, "03"]] != plan.draw_column[col[1, "03"]]
    u = np.random.default_rng(0).random((50, plan.n_keys + 4))
    dk = plan.perturbations(u, cfg)
    assert (dk[:, col[0, "031"]] == dk[:, col[1, "0301"]]).all()  # same k, same u: same bits
    # Y only changed legend: its voucher is 0 in every draw (to rounding), though k_21 varies ±20 %
    r, _ = run(cfg)
    y = r.county_columns.loc["Y"]
    assert [y["voucher_ha_p05"], y["voucher_ha_p95"]] == pytest.approx([0.0, 0.0], abs=1e-9)
    # drawn independently, 2000 · (k_0301,d − k_031,d) would spread over ±400 ha


def test_draws_follow_the_documented_layout_by_hand():
    # ΔM_X,d = 305 + 3000 (k21_d − 1.00) − 3000 (k21_d − 1.00)     (031 → 0301, one draw)
    #              + 500 (k32_d − 0.28) − 1000 (k32_d − 0.28)       (0401 target, 041 base)
    #              + 500 (k22_d − 0.89)                              (0305 target)
    #        = 305 − 500 (k32_d − 0.28) + 500 (k22_d − 0.89)
    # k_d = k · (0.9 + 0.2 u) for spread 0.1; u of a row = the column of the row among the sorted
    # Table 1 rows of both files (rows come first in the layout)
    cfg = UncertaintyConfig(draws=4000, seed=5, coefficient_spread=0.1)
    rows = sorted(set(ERDIAO.rows.values()) | set(SANDIAO.rows.values()))
    n_unlinked = len([c for c in ERDIAO.k if c not in ERDIAO.rows]) + len(
        [c for c in SANDIAO.k if c not in SANDIAO.rows]
    )  # 二调 03, 04, 11; 三调 00, 03, 04, 11
    assert n_unlinked == 7
    u = np.random.default_rng(5).random((4000, len(rows) + n_unlinked + 4))
    k32 = 0.28 * (0.9 + 0.2 * u[:, rows.index(32)])
    k22 = 0.89 * (0.9 + 0.2 * u[:, rows.index(22)])
    dm = 305 - 500 * (k32 - 0.28) + 500 * (k22 - 0.89)
    r, _ = run(cfg)
    x = r.county_columns.loc["X"]
    for name, q in (("p05", 5), ("p50", 50), ("p95", 95)):
        assert x[f"voucher_ha_{name}"] == pytest.approx(np.percentile(dm, q), rel=1e-12)
    # bounds: 305 ± (500 · 0.028 + 500 · 0.089) = 305 ± 58.5
    assert 246.5 < x["voucher_ha_p05"] < x["voucher_ha_p50"] < x["voucher_ha_p95"] < 363.5
    # the same seed, the same draws
    again, _ = run(cfg)
    pd.testing.assert_frame_equal(again.county_columns, r.county_columns, check_exact=True)


def test_explicit_ranges_name_their_legend_by_hand():
    # zero-width ranges away from k shift k in every draw:
    #   二调 031 at 0.90 (base), 三调 0301 keeps 1.00: Y = 2000 · 1.00 − 2000 · 0.90 = +200
    #   三调 0305 at 1.00: X = 305 + 500 · (1.00 − 0.89) − 3000 · (0.90 − 1.00) = 305 + 55 + 300 = 660
    cfg = UncertaintyConfig(
        draws=10,
        coefficients={
            "gbt21010_2007:031": {"low": 0.9, "high": 0.9},
            "0305": {"low": 1.0, "high": 1.0},  # a code of 三调 only: no prefix needed
        },
    )
    r, _ = run(cfg)
    assert r.county_columns["voucher_ha_p50"].to_numpy() == pytest.approx([660.0, 200.0])
    assert r.county_columns["voucher_ha_p05"].to_numpy() == pytest.approx([660.0, 200.0])


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("0399", r'"0399" is no class of legend .gbt21010_2007. .* or legend .sandiao.'),
        ("sandiao:031", r'"sandiao:031" is no class of legend .sandiao.'),
        ("clcd:4", r"no legend 'clcd' is in use \(in use: 'gbt21010_2007', 'sandiao'\)"),
    ],
)
def test_unknown_range_keys_are_named(key, message):
    with pytest.raises(InputError, match=message):
        run(UncertaintyConfig(draws=10, coefficients={key: {"spread": 0.1}}))


def test_ambiguous_and_repeated_range_keys_are_named():
    # "03" 林地 is a level-1 code of both legends
    with pytest.raises(
        InputError, match=r'"03" is a code of both .*"gbt21010_2007:03" or "sandiao:03"'
    ):
        run(UncertaintyConfig(draws=10, coefficients={"03": {"spread": 0.1}}))
    twice = {"0305": {"spread": 0.1}, "sandiao:0305": {"spread": 0.2}}
    with pytest.raises(InputError, match='"sandiao:0305": the range of this code is given twice'):
        run(UncertaintyConfig(draws=10, coefficients=twice))


def test_one_legend_keeps_plain_codes_and_checks_them():
    # one legend (三调 both years): plain text codes as today, and a prefix is accepted too
    plan = plan_draws((SANDIAO, SANDIAO), UncertaintyConfig(coefficients={"0305": {"spread": 0.1}}))
    assert len(plan.sides) == 1 and (0, "0305") in plan.columns
    plan = plan_draws(
        (SANDIAO, SANDIAO), UncertaintyConfig(coefficients={"sandiao:0305": {"spread": 0.1}})
    )
    assert (0, "0305") in plan.columns
    with pytest.raises(
        InputError,
        match=r"uncertainty.coefficients.*\b301 is no class of legend .sandiao.* in quotes",
    ):
        # an unquoted 0301 is read by YAML as 301 (or octal): named, not silently ignored
        plan_draws((SANDIAO, SANDIAO), UncertaintyConfig(coefficients={301: {"spread": 0.1}}))
