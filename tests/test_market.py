"""The voucher market (pipeline/market.py) on a hand-worked five-county example.

Five 10 km × 10 km counties in a row (x in km; centroids at y = 5 km):

    F 420101 省乙/市丙  [-10, 0]  centroid −5   E = −200  (demand)
    A 410101 省甲/市甲  [  0,10]  centroid  5   E = −300  (demand)
    B 410102 省甲/市甲  [ 10,20]  centroid 15   E = +100  (supply)
    C 410201 省甲/市乙  [ 20,30]  centroid 25   E =  +80  (supply)
    D 410202 省甲/市乙  [ 30,40]  centroid 35   E = +150  (supply)

Demand 500 ha, supply 330 ha. Buyer priority (largest |E| first): A (300), then F (200).
Distances from A: B 10 km, F 10 km, C 20 km, D 30 km; from F: B 20, C 30, D 40 km.

Default levels [city, province, region], no cap:
  city     市甲: A buys from B (its only seller in 市甲): 100        A still needs 200
           市乙: no buyer;  市丙: F has no seller
  province 省甲: A buys from the nearest, C (20 km): 80, then D (30 km): 120    A covered
           省乙: F has no seller
  region   F buys from the only seller left, D: 150 − 120 = 30      F still needs 170
  → 4 trades, 330 ha traded (all the supply), unmet 170 (F), unsold 0.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from conftest import KM, X0, Y0, box_km
from pipeline.accounting.market import clear_market
from pipeline.errors import InputError
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS, MarketConfig

FIVE = [
    # county_id, name, province, city, box (km), E (ha)
    ("410101", "A县", "省甲", "市甲", (0, 0, 10, 10), -300.0),
    ("410102", "B县", "省甲", "市甲", (10, 0, 20, 10), 100.0),
    ("410201", "C县", "省甲", "市乙", (20, 0, 30, 10), 80.0),
    ("410202", "D县", "省甲", "市乙", (30, 0, 40, 10), 150.0),
    ("420101", "F县", "省乙", "市丙", (-10, 0, 0, 10), -200.0),
]
A, B, C, D, F = (row[0] for row in FIVE)


def vouchers(rows=FIVE, **override_e) -> gpd.GeoDataFrame:
    e = {cid: v for cid, *_, v in rows} | {k.removeprefix("e_"): v for k, v in override_e.items()}
    return gpd.GeoDataFrame(
        {
            "county_id": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "province": [r[2] for r in rows],
            "city": [r[3] for r in rows],
            "voucher_ha": [e[r[0]] for r in rows],
        },
        geometry=[box_km(*r[4]) for r in rows],
        crs=DEFAULT_EQUAL_AREA_CRS,
    )


def trade_list(result) -> list[tuple]:
    t = result.trades
    return [(r.seller_id, r.buyer_id, round(r.volume_ha, 9), r.level) for r in t.itertuples()]


def test_hand_worked_five_counties():
    # floor 30,000 and market 45,000 yuan/ha → uniform price max(30,000, 45,000) = 45,000
    cfg = MarketConfig(floor_price_yuan_per_ha=30000, market_price_yuan_per_ha=45000)
    r = clear_market(vouchers(), cfg)
    assert trade_list(r) == [
        (B, A, 100.0, "city"),  # 100 × 45,000 = 4,500,000 yuan
        (C, A, 80.0, "province"),  # 80 × 45,000 = 3,600,000
        (D, A, 120.0, "province"),  # 120 × 45,000 = 5,400,000
        (D, F, 30.0, "region"),  # 30 × 45,000 = 1,350,000
    ]
    assert list(r.trades["value_yuan"]) == [4.5e6, 3.6e6, 5.4e6, 1.35e6]
    assert set(r.trades["price_yuan_per_ha"]) == {45000.0}
    assert list(r.trades["distance_km"]) == [10.0, 20.0, 30.0, 40.0]
    assert list(r.trades.columns) == [
        "seller_id", "seller_name", "buyer_id", "buyer_name", "volume_ha",
        "price_yuan_per_ha", "value_yuan", "level", "distance_km", "geometry",
    ]  # fmt: skip
    assert list(r.trades["seller_name"]) == ["B县", "C县", "D县", "D县"]
    assert list(r.trades["buyer_name"]) == ["A县", "A县", "A县", "F县"]

    # lines run from the seller's centroid to the buyer's, in the same CRS
    assert r.trades.crs == vouchers().crs
    first = r.trades.geometry.iloc[0]
    assert list(first.coords) == [(X0 + 15 * KM, Y0 + 5 * KM), (X0 + 5 * KM, Y0 + 5 * KM)]

    cc = r.county_columns
    assert list(cc.index) == [A, B, C, D, F]
    assert list(cc.columns) == ["bought_ha", "sold_ha", "unmet_ha", "unsold_ha"]
    assert cc.loc[A].tolist() == [300.0, 0.0, 0.0, 0.0]
    assert cc.loc[B].tolist() == [0.0, 100.0, 0.0, 0.0]
    assert cc.loc[C].tolist() == [0.0, 80.0, 0.0, 0.0]
    assert cc.loc[D].tolist() == [0.0, 150.0, 0.0, 0.0]
    assert cc.loc[F].tolist() == [30.0, 0.0, 170.0, 0.0]

    t = r.totals
    assert t["traded_ha"] == 330.0
    assert t["traded_value_yuan"] == 330.0 * 45000  # 14,850,000 yuan
    assert t["price_yuan_per_ha"] == 45000.0
    assert t["unmet_demand_ha"] == 170.0
    assert t["unsold_supply_ha"] == 0.0
    assert t["cap_binding"] == 0.0
    assert np.isnan(t["annual_cap_ha"])
    assert t["uncapped_traded_ha"] == 330.0
    assert (t["traded_city_ha"], t["traded_province_ha"], t["traded_region_ha"]) == (
        100.0, 200.0, 30.0,
    )  # fmt: skip
    assert t["n_trades"] == 4.0


def test_floor_price_wins_when_market_price_is_lower_or_absent():
    r = clear_market(
        vouchers(),
        MarketConfig(floor_price_yuan_per_ha=30000, market_price_yuan_per_ha=20000),
    )
    # max(30,000, 20,000) = 30,000; B → A 100 ha = 3,000,000 yuan
    assert r.totals["price_yuan_per_ha"] == 30000.0
    assert r.trades["value_yuan"].iloc[0] == 3.0e6
    assert r.totals["traded_value_yuan"] == 330.0 * 30000
    r = clear_market(vouchers(), MarketConfig(floor_price_yuan_per_ha=30000))
    assert r.totals["price_yuan_per_ha"] == 30000.0
    assert np.isnan(r.totals["market_price_yuan_per_ha"])


def test_cap_binds():
    # cap 150: city  B → A 100 (50 of the cap left)
    #          province  A buys from C (nearest): min(200, 80, 50) = 50 → cap used up, trading stops
    # unmet: A 300 − 150 = 150, F 200 → 350;  unsold: C 80 − 50 = 30, D 150 → 180
    r = clear_market(vouchers(), MarketConfig(floor_price_yuan_per_ha=1000, annual_cap_ha=150))
    assert trade_list(r) == [(B, A, 100.0, "city"), (C, A, 50.0, "province")]
    t = r.totals
    assert t["traded_ha"] == 150.0
    assert t["cap_binding"] == 1.0
    assert t["uncapped_traded_ha"] == 330.0
    assert t["unmet_demand_ha"] == 350.0
    assert t["unsold_supply_ha"] == 180.0
    assert r.county_columns.loc[C, "unsold_ha"] == 30.0
    assert r.county_columns.loc[A, "unmet_ha"] == 150.0


def test_cap_that_does_not_bind():
    # the uncapped market trades 330 ha; a cap of 330 or more changes nothing
    for cap in (330, 1000):
        r = clear_market(vouchers(), MarketConfig(floor_price_yuan_per_ha=1, annual_cap_ha=cap))
        assert r.totals["traded_ha"] == 330.0
        assert r.totals["cap_binding"] == 0.0
    r = clear_market(vouchers(), MarketConfig(floor_price_yuan_per_ha=1, annual_cap_ha=0))
    assert len(r.trades) == 0 and r.totals["traded_ha"] == 0.0
    assert r.totals["cap_binding"] == 1.0


def test_within_city_before_cross_province_even_when_farther():
    # F turns seller (E = +500). It is as near to A (10 km) as B and nearer than C and D, but A
    # first buys within its city (B 100), then its province (C 80, D 120); F sells nothing.
    r = clear_market(vouchers(e_420101=500.0), MarketConfig(floor_price_yuan_per_ha=1))
    assert trade_list(r) == [(B, A, 100.0, "city"), (C, A, 80.0, "province"),
                             (D, A, 120.0, "province")]  # fmt: skip
    assert r.county_columns.loc[F, "sold_ha"] == 0.0
    assert r.county_columns.loc[D, "unsold_ha"] == 30.0
    assert r.county_columns.loc[F, "unsold_ha"] == 500.0


def test_region_only_nearest_seller_ties_by_county_id():
    # levels [region]: A (300) buys from the nearest sellers; B and F are both 10 km away:
    # the tie goes to the smaller county_id, 410102 (B): 100, then F (420101): 200. Covered.
    r = clear_market(
        vouchers(e_420101=500.0), MarketConfig(floor_price_yuan_per_ha=1, levels=["region"])
    )
    assert trade_list(r) == [(B, A, 100.0, "region"), (F, A, 200.0, "region")]
    assert r.totals["unsold_supply_ha"] == 80 + 150 + 300


def test_no_trade_across_provinces_without_region_level():
    r = clear_market(
        vouchers(), MarketConfig(floor_price_yuan_per_ha=1, levels=["city", "province"])
    )
    assert trade_list(r) == [(B, A, 100.0, "city"), (C, A, 80.0, "province"),
                             (D, A, 120.0, "province")]  # fmt: skip
    assert r.county_columns.loc[F, "unmet_ha"] == 200.0
    assert r.totals["traded_region_ha"] == 0.0


def test_same_city_name_in_two_provinces_is_two_cities():
    # F renamed to 市甲 (but in 省乙): still not in A's city, so F buys nothing at the city level
    rows = [r if r[0] != F else (F, "F县", "省乙", "市甲", r[4], r[5]) for r in FIVE]
    assert trade_list(clear_market(vouchers(rows), MarketConfig(floor_price_yuan_per_ha=1)))[
        -1
    ] == (D, F, 30.0, "region")


def test_deterministic_whatever_the_row_order():
    cfg = MarketConfig(floor_price_yuan_per_ha=30000, annual_cap_ha=250)
    first = clear_market(vouchers(), cfg)
    again = clear_market(vouchers(), cfg)
    shuffled = clear_market(vouchers(list(reversed(FIVE))), cfg)
    pd.testing.assert_frame_equal(first.trades, again.trades)
    pd.testing.assert_frame_equal(
        first.trades.reset_index(drop=True), shuffled.trades.reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        first.county_columns, shuffled.county_columns.loc[[A, B, C, D, F]]
    )
    assert first.totals == pytest.approx(shuffled.totals, nan_ok=True)


def _random_case(n: int, seed: int) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x, y = i % 10 * 10, i // 10 * 10
        e = float(rng.normal(0, 100)) if rng.random() > 0.1 else 0.0
        rows.append(
            (f"{500000 + i}", f"县{i}", f"省{i % 3}", f"市{i % 7}", (x, y, x + 10, y + 10), e)
        )
    return vouchers(rows)


@pytest.mark.parametrize("cap", [None, 0.0, 500.0, 2000.0, 1e9])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_conservation(cap, seed):
    cv = _random_case(60, seed)
    r = clear_market(cv, MarketConfig(floor_price_yuan_per_ha=10, annual_cap_ha=cap))
    e = cv.set_index("county_id")["voucher_ha"]
    supply, demand = e.clip(lower=0), (-e).clip(lower=0)
    cc, t = r.county_columns, r.trades
    # sold ≤ E for sellers, bought ≤ |E| for buyers, nobody both buys and sells
    assert (cc["sold_ha"] <= supply).all() and (cc["bought_ha"] <= demand).all()
    assert ((cc["sold_ha"] == 0) | (cc["bought_ha"] == 0)).all()
    assert np.allclose(cc["bought_ha"] + cc["unmet_ha"], demand, rtol=0, atol=1e-9)
    assert np.allclose(cc["sold_ha"] + cc["unsold_ha"], supply, rtol=0, atol=1e-9)
    # the trades add up to the county columns
    sold = t.groupby("seller_id")["volume_ha"].sum().reindex(cc.index, fill_value=0)
    bought = t.groupby("buyer_id")["volume_ha"].sum().reindex(cc.index, fill_value=0)
    assert np.allclose(sold, cc["sold_ha"], rtol=0, atol=1e-9)
    assert np.allclose(bought, cc["bought_ha"], rtol=0, atol=1e-9)
    assert (t["volume_ha"] > 0).all()
    # traded ≤ supply, ≤ demand, ≤ cap; uncapped: exactly the level-by-level potential
    traded = r.totals["traded_ha"]
    assert traded <= supply.sum() + 1e-9 and traded <= demand.sum() + 1e-9
    if cap is not None:
        assert traded <= cap + 1e-9
        assert r.totals["cap_binding"] == float(r.totals["uncapped_traded_ha"] > cap)
    if cap is None or cap >= r.totals["uncapped_traded_ha"]:
        assert traded == pytest.approx(r.totals["uncapped_traded_ha"], rel=1e-12)
    # trades are made city level first, then province, then region
    order = t["level"].map({"city": 0, "province": 1, "region": 2}).to_numpy()
    assert (np.diff(order) >= 0).all()
    prov = cv.set_index("county_id")["province"]
    city = cv.set_index("county_id")["city"]
    same_city = (prov[t.seller_id].values == prov[t.buyer_id].values) & (
        city[t.seller_id].values == city[t.buyer_id].values
    )
    assert (same_city[t["level"] == "city"]).all()
    assert (prov[t.seller_id].values == prov[t.buyer_id].values)[t["level"] == "province"].all()


def test_balanced_and_missing_vouchers_take_no_part():
    cv = vouchers(e_410102=0.0, e_410201=np.nan)
    r = clear_market(cv, MarketConfig(floor_price_yuan_per_ha=1))
    assert B not in set(r.trades.seller_id) and C not in set(r.trades.seller_id)
    assert r.county_columns.loc[B].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert np.isnan(r.county_columns.loc[C, "unsold_ha"])


def test_bad_config_and_input():
    with pytest.raises(ValidationError, match="ordered"):
        MarketConfig(floor_price_yuan_per_ha=1, levels=["region", "city"])
    with pytest.raises(ValidationError):
        MarketConfig(floor_price_yuan_per_ha=-1)
    with pytest.raises(ValidationError):
        MarketConfig(floor_price_yuan_per_ha=1, annual_cap_ha=-5)
    with pytest.raises(ValidationError):
        MarketConfig(floor_price_yuan_per_ha=1, cap=5)  # unknown key
    with pytest.raises(ValidationError):
        MarketConfig()  # the floor price is required
    cv = vouchers()
    cv.loc[4, "county_id"] = A
    with pytest.raises(InputError, match="410101"):
        clear_market(cv, MarketConfig(floor_price_yuan_per_ha=1))
    cv = vouchers()
    cv.geometry = cv.geometry.where(cv["county_id"] != D, None)
    with pytest.raises(InputError, match="410202"):
        clear_market(cv, MarketConfig(floor_price_yuan_per_ha=1))
