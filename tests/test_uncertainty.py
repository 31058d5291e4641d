"""Monte Carlo over coefficients, national values and price (pipeline/uncertainty.py).

The five counties of test_market.py, each 10 km × 10 km = 100 km² = 10,000 ha, built through the
real accounting. National values: GDP per capita 50,000 yuan, density 100 persons/km².
Every county has 10,000 persons (density 100 → P = 1) and GDP 5e8 yuan (50,000 per person → G = 1),
except F: GDP 1e9 yuan (G = 2). Forest (21, k = 1.00) areas 2010 → 2018:

    A 410101  3000 → 2700   ΔM = −300   E = −300 · 1 · 1 = −300  demand
    B 410102  1000 → 1100   ΔM = +100   E = +100                 supply
    C 410201   500 →  580   ΔM =  +80   E =  +80                 supply
    D 410202   200 →  350   ΔM = +150   E = +150                 supply
    F 420101  1000 →  900   ΔM = −100   E = −100 · 2 · 1 = −200  demand

Region: demand 500, supply 330, net 170 ha.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from conftest import box_km
from pipeline.accounting.uncertainty import monte_carlo
from pipeline.accounting.vouchers import account
from pipeline.errors import InputError
from pipeline.settings.coefficients import Coefficients
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS, Config, UncertaintyConfig

K = {21: 1.0, 22: 0.89, 31: 0.33, 43: 2.10}
NATIONAL = (50000.0, 100.0)
PRICE = 50000.0
COUNTIES = [
    # id, name, province, city, box, forest 2010, forest 2018, GDP yuan
    ("410101", "A县", "省甲", "市甲", (0, 0, 10, 10), 3000, 2700, 5e8),
    ("410102", "B县", "省甲", "市甲", (10, 0, 20, 10), 1000, 1100, 5e8),
    ("410201", "C县", "省甲", "市乙", (20, 0, 30, 10), 500, 580, 5e8),
    ("410202", "D县", "省甲", "市乙", (30, 0, 40, 10), 200, 350, 5e8),
    ("420101", "F县", "省乙", "市丙", (-10, 0, 0, 10), 1000, 900, 1e9),
]
IDS = [c[0] for c in COUNTIES]
E = [-300.0, 100.0, 80.0, 150.0, -200.0]


def accounts(counties=COUNTIES, extra_rows=()) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """class_areas and county_vouchers made by pipeline.accounting.account."""
    geoms = [box_km(*c[4]) for c in counties]
    gdf = gpd.GeoDataFrame(
        {
            "county_id": [c[0] for c in counties],
            "name": [c[1] for c in counties],
            "province": [c[2] for c in counties],
            "city": [c[3] for c in counties],
            "area_m2": [g.area for g in geoms],
        },
        geometry=geoms,
        crs=DEFAULT_EQUAL_AREA_CRS,
    )
    rows = []
    for cid, *_, f0, ft, _gdp in counties:
        rows += [(cid, 2010, 21, float(f0)), (cid, 2018, 21, float(ft))]
        # cropland (k = 0) fills the rest and must not matter
        rows += [(cid, 2010, 12, 10000.0 - f0), (cid, 2018, 12, 10000.0 - ft)]
    rows += list(extra_rows)
    class_areas = pd.DataFrame(rows, columns=["county_id", "year", "class_code", "area_ha"])
    socio = pd.DataFrame(
        {"gdp_yuan": [c[7] for c in counties], "population": 10000.0},
        index=pd.Index([c[0] for c in counties], name="county_id"),
    )
    config = Config(
        years={"base": 2010, "target": 2018},
        national={
            2018: {"gdp_per_capita_yuan": NATIONAL[0], "population_density_per_km2": NATIONAL[1]}
        },
        price_yuan_per_ha=PRICE,
    )
    coefficients = Coefficients(k=K, names={c: str(c) for c in K}, path=Path("test"))
    return class_areas, account(gdf, class_areas, socio, config, coefficients).county_vouchers


def run(cfg: UncertaintyConfig, **kw):
    class_areas, cv = accounts()
    return monte_carlo(class_areas, cv, K, NATIONAL, PRICE, cfg, **kw)


def test_fixture_is_the_hand_worked_one():
    _, cv = accounts()
    assert cv["voucher_ha"].tolist() == E
    assert cv["role"].tolist() == ["demand", "supply", "supply", "supply", "demand"]


def test_zero_spread_reproduces_the_deterministic_result_exactly():
    class_areas, cv = accounts()
    r = monte_carlo(class_areas, cv, K, NATIONAL, PRICE, UncertaintyConfig(draws=500, seed=7))
    cc = r.county_columns
    assert list(cc.index) == IDS
    voucher = cv["voucher_ha"].to_numpy()
    for col in ("voucher_ha_p05", "voucher_ha_p50", "voucher_ha_p95"):
        assert (cc[col].to_numpy() == voucher).all(), col  # bit for bit
    for col in ("value_yuan_p05", "value_yuan_p50", "value_yuan_p95"):
        assert (cc[col].to_numpy() == cv["value_yuan"].to_numpy()).all(), col
    assert cc["p_demand"].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    for p in ("p05", "p50", "p95"):
        assert r.totals[f"demand_ha_{p}"] == 500.0
        assert r.totals[f"supply_ha_{p}"] == 330.0
        assert r.totals[f"net_ha_{p}"] == 170.0
        assert r.totals[f"demand_value_yuan_{p}"] == 500.0 * PRICE
    # explicit zero-width ranges are zero spread too
    zero = UncertaintyConfig(
        draws=200,
        distribution="triangular",
        coefficients={21: {"low": 1.0, "high": 1.0}},
        national={
            "alternatives": [{"gdp_per_capita_yuan": 50000, "population_density_per_km2": 100}]
        },
        price={"low": PRICE, "high": PRICE},
    )
    cc = monte_carlo(class_areas, cv, K, NATIONAL, PRICE, zero).county_columns
    assert (cc["voucher_ha_p05"].to_numpy() == voucher).all()
    assert (cc["voucher_ha_p95"].to_numpy() == voucher).all()


def test_zero_spread_exact_on_awkward_numbers():
    # G, P and areas that are not round: the zero-spread result still equals voucher_ha bit for bit
    rng = np.random.default_rng(3)
    counties = [
        (f"{300000 + i}", f"县{i}", "省", "市", (i * 10, 0, i * 10 + 10, 10),
         float(rng.uniform(0, 5000)), float(rng.uniform(0, 5000)), float(rng.uniform(1e7, 1e10)))
        for i in range(40)
    ]  # fmt: skip
    extra = [(c[0], y, code, float(rng.uniform(0, 900))) for c in counties for y in (2010, 2018)
             for code in (22, 31, 43)]  # fmt: skip
    class_areas, cv = accounts(counties, extra)
    r = monte_carlo(class_areas, cv, K, NATIONAL, PRICE, UncertaintyConfig(draws=50))
    assert (r.county_columns["voucher_ha_p50"].to_numpy() == cv["voucher_ha"].to_numpy()).all()
    assert set(r.county_columns["p_demand"]) <= {0.0, 1.0}
    assert (r.county_columns["p_demand"] == (cv["role"] == "demand").to_numpy()).all()


def test_forest_coefficient_spread_by_hand():
    # k_21 ~ U[0.9, 1.1] (±10 %); every E is proportional to k_21:
    # A: E = −300·k → p05 ≈ −300·1.09 = −327, p50 ≈ −300, p95 ≈ −300·0.91 = −273
    # demand = 500·k → [455, 500, 545];  supply = 330·k → [300.3, 330, 359.7];  net = 170·k
    r = run(UncertaintyConfig(draws=10000, seed=1, coefficient_spread=0.1))
    a = r.county_columns.loc["410101"]
    assert a["voucher_ha_p05"] == pytest.approx(-327, abs=1)
    assert a["voucher_ha_p50"] == pytest.approx(-300, abs=1)
    assert a["voucher_ha_p95"] == pytest.approx(-273, abs=1)
    assert a["p_demand"] == 1.0
    assert r.totals["demand_ha_p05"] == pytest.approx(455, abs=1.5)
    assert r.totals["demand_ha_p95"] == pytest.approx(545, abs=1.5)
    assert r.totals["supply_ha_p50"] == pytest.approx(330, abs=1.5)
    assert r.totals["net_ha_p95"] == pytest.approx(170 * 1.09, abs=1)
    # each draw: demand / supply = 500 / 330 exactly (the same k for all counties)
    d = r.region_draws
    assert np.allclose(d["demand_ha"] / d["supply_ha"], 500 / 330, rtol=1e-12)
    assert d["demand_ha"].between(450 - 1e-9, 550 + 1e-9).all()


def test_triangular_range_and_explicit_bounds():
    # k_21 triangular on [0.8, 1.1] peaking at 1.0: all draws in range, median where F(x) = 0.5:
    # F(1.0) = (1.0 − 0.8)/(1.1 − 0.8) = 2/3 > 0.5, so x = 0.8 + √(0.5 · 0.3 · 0.2) = 0.9732
    cfg = UncertaintyConfig(
        draws=20000,
        seed=5,
        coefficients={21: {"low": 0.8, "high": 1.1, "distribution": "triangular"}},
    )
    r = run(cfg)
    d = r.region_draws["demand_ha"]  # = 500 · k
    assert d.between(400 - 1e-9, 550 + 1e-9).all()
    assert r.totals["demand_ha_p50"] == pytest.approx(500 * 0.97321, abs=1.5)
    with pytest.raises(InputError, match="peak"):
        run(
            UncertaintyConfig(
                distribution="triangular", coefficients={21: {"low": 1.2, "high": 1.3}}
            )
        )


def test_sign_can_flip_p_demand_by_hand():
    # G 410101: forest 1000 → 900 (−100), water 43 0 → 50 (+50 · 2.10 = +105): ΔM = +5, E = +5
    # with k_43 ~ U[1.89, 2.31]: E < 0 ⟺ 50·k_43 < 100 ⟺ k_43 < 2.0 → p = 0.11 / 0.42 = 0.2619
    counties = [("410101", "G县", "省", "市", (0, 0, 10, 10), 1000, 900, 5e8)]
    class_areas, cv = accounts(counties, [("410101", 2018, 43, 50.0)])
    assert cv["voucher_ha"].iloc[0] == pytest.approx(5.0, abs=1e-9)
    cfg = UncertaintyConfig(draws=20000, seed=11, coefficients={43: {"spread": 0.1}})
    r = monte_carlo(class_areas, cv, K, NATIONAL, PRICE, cfg)
    assert r.county_columns["p_demand"].iloc[0] == pytest.approx(0.2619, abs=0.01)


def test_national_alternatives_and_price_by_hand():
    # alternatives: GDP per capita 50,000 (as used) or 100,000 → G halves: factor 1 or 0.5
    # A: E ∈ {−300, −150}: p05 = −300, p95 = −150 exactly; about half the draws each.
    # price 50,000 ± 20 % uniform → value of A's E in [−300·60,000, −150·40,000]
    cfg = UncertaintyConfig(
        draws=4000,
        seed=3,
        national={
            "alternatives": [
                {"gdp_per_capita_yuan": 50000, "population_density_per_km2": 100},
                {"gdp_per_capita_yuan": 100000, "population_density_per_km2": 100},
            ]
        },
        price={"spread": 0.2},
    )
    r = run(cfg)
    a = r.county_columns.loc["410101"]
    assert a["voucher_ha_p05"] == -300.0 and a["voucher_ha_p95"] == -150.0
    d = r.region_draws
    assert set(d["gdp_per_capita_yuan"]) == {50000.0, 100000.0}
    assert (d["gdp_per_capita_yuan"] == 100000).mean() == pytest.approx(0.5, abs=0.03)
    assert d["price_yuan_per_ha"].between(40000, 60000).all()
    assert set(np.round(d["demand_ha"], 9)) == {500.0, 250.0}
    assert -300 * 60000 <= a["value_yuan_p05"] < a["value_yuan_p95"] <= -150 * 40000
    # a relative spread on the national values: G_d = G · 50,000 / g_d with g_d ∈ 50,000 × [0.9, 1.1]
    r = run(UncertaintyConfig(draws=4000, seed=3, national={"spread": 0.1}))
    assert r.region_draws["gdp_per_capita_yuan"].between(45000, 55000).all()
    assert r.county_columns.loc["410101", "voucher_ha_p50"] == pytest.approx(-300, abs=5)


def test_seeded_reproducibility_and_blocks():
    cfg = UncertaintyConfig(
        draws=3000,
        seed=42,
        coefficient_spread=0.2,
        national={"spread": 0.05},
        price={"spread": 0.1},
    )
    one, two = run(cfg), run(cfg)
    pd.testing.assert_frame_equal(one.county_columns, two.county_columns)
    assert one.totals == two.totals
    other = run(cfg.model_copy(update={"seed": 43}))
    assert not one.county_columns.equals(other.county_columns)
    # blocks of counties (memory_mb small, many draws) give the same percentiles
    big = cfg.model_copy(update={"draws": 120000})
    small_blocks = run(big.model_copy(update={"memory_mb": 8}))  # 8 MiB / (120,000 × 24 B) = 2
    one_block = run(big)
    pd.testing.assert_frame_equal(small_blocks.county_columns, one_block.county_columns)
    assert small_blocks.totals == pytest.approx(one_block.totals, rel=1e-12)
    # two threads sharing 16 MiB: 16 MiB / (120,000 × 24 B × 2) = 2 counties a block, as above;
    # the same numbers bit for bit, whichever block finishes first
    threaded = run(big.model_copy(update={"memory_mb": 16}), threads=2)
    pd.testing.assert_frame_equal(
        threaded.county_columns, small_blocks.county_columns, check_exact=True
    )
    assert threaded.totals == small_blocks.totals


def test_protection_rate_baseline_needs_baseline_areas():
    # a baseline that is not the base-year land: A's baseline 2,500 ha of forest instead of 3,000
    class_areas, cv = accounts()
    cv = cv.copy()
    cv.loc[0, "sf_base_ha"] = 2500.0
    cv.loc[0, "static_voucher_ha"] = 2700.0 - 2500.0
    cv.loc[0, "voucher_ha"] = 200.0
    with pytest.raises(InputError, match="410101"):
        monte_carlo(class_areas, cv, K, NATIONAL, PRICE, UncertaintyConfig(draws=10))
    baseline = class_areas[class_areas["year"] == 2010].drop(columns="year")
    baseline.loc[baseline["county_id"].eq("410101") & baseline["class_code"].eq(21), "area_ha"] = (
        2500
    )
    r = monte_carlo(class_areas, cv, K, NATIONAL, PRICE, UncertaintyConfig(draws=10),
                    baseline_areas=baseline)  # fmt: skip
    assert r.county_columns.loc["410101", "voucher_ha_p50"] == 200.0
    # k_21 ± 10 %: ΔM_d = 200 + (2700 − 2500)(k − 1) = 200 k → p95 ≈ 218
    r = monte_carlo(class_areas, cv, K, NATIONAL, PRICE,
                    UncertaintyConfig(draws=5000, coefficient_spread=0.1), baseline_areas=baseline)  # fmt: skip
    assert r.county_columns.loc["410101", "voucher_ha_p95"] == pytest.approx(218, abs=1)


def test_years_and_config_errors():
    class_areas, cv = accounts()
    three = pd.concat([class_areas, class_areas.assign(year=2015)])
    with pytest.raises(InputError, match="years"):
        monte_carlo(three, cv, K, NATIONAL, PRICE, UncertaintyConfig(draws=10))
    r = monte_carlo(three, cv, K, NATIONAL, PRICE, UncertaintyConfig(draws=10), years=(2010, 2018))
    assert r.county_columns["voucher_ha_p50"].tolist() == E
    with pytest.raises(ValidationError):
        UncertaintyConfig(coefficients={21: {"spread": 0.1, "low": 0.9, "high": 1.1}})
    with pytest.raises(ValidationError):
        UncertaintyConfig(coefficients={21: {"low": 1.1, "high": 0.9}})
    with pytest.raises(ValidationError):
        UncertaintyConfig(draws=0)
    with pytest.raises(ValidationError):
        UncertaintyConfig(spread=0.1)  # unknown key
