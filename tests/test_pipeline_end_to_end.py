"""The whole pipeline on the two-county fixture (tests/conftest.py), every number by hand."""

from __future__ import annotations

import pandas as pd
import pyogrio
import pytest

from pipeline.cli import main
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine

# County A (110101): 2010 forest 5,000 ha → M_0 = 5000 × 1.00 = 5000
#                    2018 forest 2,500 ha → M_t = 2500; ΔM = −2500
#   G = (1e9 yuan / 100,000 persons) / 50,000 = 10,000 / 50,000 = 0.2
#   P = (100,000 persons / 100 km²) / 100 = 10
#   E = −2500 × 0.2 × 10 = −5000 ha (demand);  Q = −5000 × 50,000 = −2.5e8 yuan
# County B (130102): 2010 grass(31) 5,000 ha → M_0 = 5000 × 0.33 = 1650
#                    2018 reservoir 2,500 × 2.10 + grass 2,500 × 0.33 = 5250 + 825 = 6075
#   ΔM = 4425;  G = (3e8 / 10,000) / 50,000 = 0.6;  P = (10,000 / 100) / 100 = 1
#   E = 4425 × 0.6 × 1 = 2655 ha (supply);  Q = 2655 × 50,000 = 1.3275e8 yuan
EXPECTED = {
    "110101": dict(
        sf_base_ha=5000, sf_target_ha=2500, static_voucher_ha=-2500, gdp_coef=0.2, pop_coef=10,
        voucher_ha=-5000, value_yuan=-2.5e8, role="demand", area_km2=100,
    ),
    "130102": dict(
        sf_base_ha=1650, sf_target_ha=6075, static_voucher_ha=4425, gdp_coef=0.6, pop_coef=1,
        voucher_ha=2655, value_yuan=1.3275e8, role="supply", area_km2=100,
    ),
}  # fmt: skip


def _check_vouchers(gpkg) -> None:
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers").set_index("county_id")
    assert sorted(cv.index) == ["110101", "130102"]
    for cid, expected in EXPECTED.items():
        for col, value in expected.items():
            if isinstance(value, str):
                assert cv.loc[cid, col] == value
            else:
                assert cv.loc[cid, col] == pytest.approx(value, rel=1e-9), (cid, col)
    assert cv.loc["110101", "name"] == "甲县"
    assert cv.loc["130102", "coverage_base"] == pytest.approx(1.0, rel=1e-12)


def test_run_writes_hand_computed_vouchers(case, tmp_path):
    catalog, config = case
    result = run_pipeline(catalog, config, tmp_path / "out", Engine(workers=1, progress=False))
    _check_vouchers(result.gpkg)
    layers = {name for name, _ in pyogrio.list_layers(result.gpkg)}
    assert {"county_vouchers", "class_areas", "summary"} <= layers


def test_class_areas_layer(case, tmp_path):
    catalog, config = case
    gpkg = run_pipeline(catalog, config, tmp_path / "o", Engine(workers=1, progress=False)).gpkg
    ca = pyogrio.read_dataframe(gpkg, layer="class_areas")
    got = {(r.county_id, r.year, r.class_code): r.area_ha for r in ca.itertuples()}
    # cropland box [0,25]×[5,10] km: 5,000 ha in each county, its 2,500 ha east of B dropped
    expected = {
        ("110101", 2010, 12): 5000, ("110101", 2010, 21): 5000,
        ("110101", 2018, 12): 5000, ("110101", 2018, 21): 2500, ("110101", 2018, 51): 2500,
        ("130102", 2010, 12): 5000, ("130102", 2010, 31): 5000,
        ("130102", 2018, 12): 5000, ("130102", 2018, 31): 2500, ("130102", 2018, 43): 2500,
    }  # fmt: skip
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


def test_summary_totals(case, tmp_path):
    catalog, config = case
    gpkg = run_pipeline(catalog, config, tmp_path / "o", Engine(workers=1, progress=False)).gpkg
    s = pyogrio.read_dataframe(gpkg, layer="summary").set_index("key")
    # M_0 = 5000 + 1650 = 6650; M_t = 2500 + 6075 = 8575
    # demand = |−5000| = 5000; supply = 2655; net = 5000 − 2655 = 2345
    for key, value in {
        "sf_base_ha": 6650,
        "sf_target_ha": 8575,
        "demand_ha": 5000,
        "supply_ha": 2655,
        "net_ha": 2345,
        "n_demand": 1,
        "n_supply": 1,
    }.items():
        assert s.loc[key, "value"] == pytest.approx(value, rel=1e-9), key
    assert "sha256=" in s.loc["input_1", "text"]


def test_cli_run_exit_0_and_prints_path(case, tmp_path, capsys):
    catalog, config = case
    out = tmp_path / "cli out"
    code = main(
        ["-q", "run", "--catalog", str(catalog), "--config", str(config), "--out", str(out)]
    )
    assert code == 0
    assert str(out / "eco_vouchers.gpkg") in capsys.readouterr().out
    _check_vouchers(out / "eco_vouchers.gpkg")


def test_cli_bad_input_exit_2_and_no_output(case, tmp_path, capsys):
    catalog, config = case
    (catalog.parent / "data" / "socio.csv").unlink()
    out = tmp_path / "out"
    code = main(["run", "--catalog", str(catalog), "--config", str(config), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "socio.csv" in err and "Traceback" not in err
    assert not (out / "eco_vouchers.gpkg").exists()


def _run_with(tmp_path, config_extra: dict):
    from conftest import write_case

    catalog, config = write_case(tmp_path / "case", config_extra=config_extra)
    gpkg = run_pipeline(catalog, config, tmp_path / "out", Engine(workers=1, progress=False)).gpkg
    return pyogrio.read_dataframe(gpkg, layer="county_vouchers").set_index("county_id"), gpkg


def test_protection_rate_baseline_national(tmp_path):
    # national density of standard forest in 2010: (5000 + 1650) hm² / 200 km² = 33.25 hm²/km²
    # baseline of each 100 km² county = 33.25 × 100 = 3325 hm²
    # A: ΔM = 2500 − 3325 = −825;  E = −825 × 0.2 × 10 = −1650
    # B: ΔM = 6075 − 3325 = 2750;  E = 2750 × 0.6 × 1 = 1650
    cv, _ = _run_with(tmp_path, {"baseline": {"mode": "protection_rate", "level": "national"}})
    assert cv["baseline_ha"].to_numpy() == pytest.approx([3325, 3325], rel=1e-12)
    assert cv["static_voucher_ha"].to_numpy() == pytest.approx([-825, 2750], rel=1e-12)
    assert cv["voucher_ha"].to_numpy() == pytest.approx([-1650, 1650], rel=1e-12)
    assert cv["sf_base_ha"].to_numpy() == pytest.approx([5000, 1650], rel=1e-12)  # M_0 kept


def test_protection_rate_by_province_equals_base_year_when_each_county_is_a_province(tmp_path):
    # each fixture county is alone in its province, so its level density × area is its own M_0
    cv, _ = _run_with(tmp_path, {"baseline": {"mode": "protection_rate", "level": "province"}})
    assert cv["baseline_ha"].to_numpy() == pytest.approx([5000, 1650], rel=1e-12)
    assert cv["voucher_ha"].to_numpy() == pytest.approx([-5000, 2655], rel=1e-12)


def test_market_and_uncertainty_sections(tmp_path):
    # A needs 5000 hm², B offers 2655; different provinces and cities → one region-level trade of
    # 2655 hm² at max(30,000, 45,000) = 45,000 yuan/hm² → 2655 × 45,000 = 119,475,000 yuan;
    # A's unmet demand 5000 − 2655 = 2345 hm².
    cv, gpkg = _run_with(
        tmp_path,
        {
            "market": {"floor_price_yuan_per_ha": 30000, "market_price_yuan_per_ha": 45000},
            "uncertainty": {"draws": 200, "seed": 1},  # zero spread: percentiles = E
        },
    )
    assert cv.loc["110101", "bought_ha"] == pytest.approx(2655)
    assert cv.loc["110101", "unmet_ha"] == pytest.approx(2345)
    assert cv.loc["130102", "sold_ha"] == pytest.approx(2655)
    trades = pyogrio.read_dataframe(gpkg, layer="trades")
    assert len(trades) == 1 and trades.loc[0, "level"] == "region"
    assert trades.loc[0, "value_yuan"] == pytest.approx(119_475_000)
    assert cv["voucher_ha_p05"].to_numpy() == pytest.approx([-5000, 2655], rel=1e-12)
    assert cv["p_demand"].to_numpy() == pytest.approx([1.0, 0.0])
    s = pyogrio.read_dataframe(gpkg, layer="summary").set_index("key")
    assert s.loc["traded_ha", "value"] == pytest.approx(2655)


def test_resume_recomputes_only_missing_partitions_with_identical_results(
    case, tmp_path, monkeypatch
):
    import pipeline.zonal.vector as zonal

    catalog, config = case
    out = tmp_path / "out"
    engine = Engine(workers=1, progress=False)
    calls = []
    real = zonal._partition_task
    monkeypatch.setattr(zonal, "_partition_task", lambda *a: calls.append(1) or real(*a))

    first = run_pipeline(catalog, config, out, engine, partition_size=1)  # 2 partitions
    assert len(calls) == 2
    saved = sorted((out / ".ecovoucher-cache").rglob("zonal-*.npz"))
    assert len(saved) == 2
    before = first.accounts.county_vouchers.drop(columns="geometry")

    saved[0].unlink()  # as if the run had been killed after one partition
    again = run_pipeline(catalog, config, out, engine, partition_size=1)
    assert len(calls) == 3  # only the missing partition was recomputed
    after = again.accounts.county_vouchers.drop(columns="geometry")
    pd.testing.assert_frame_equal(before, after, check_exact=True)

    run_pipeline(catalog, config, out, engine, partition_size=1, force=True)
    assert len(calls) == 5  # --force: everything again


def test_resume_notices_a_changed_catalog_read_option(case, tmp_path):
    import yaml

    catalog, config = case
    out = tmp_path / "out"
    engine = Engine(workers=1, progress=False)
    run_pipeline(catalog, config, out, engine)
    # the same files read through another code field must not reuse the cached areas
    data = catalog.parent / "data"
    for year in (2010, 2018):
        lu = pyogrio.read_dataframe(data / f"lu_{year}.shp", encoding="gbk")
        lu["code2"] = lu["gridcode"].replace({21: 22})
        pyogrio.write_dataframe(lu, data / f"lu_{year}.shp", encoding="GBK")
    run_pipeline(catalog, config, out, engine)  # files changed: new checksums
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    for entry in cat["datasets"]["landuse"].values():
        entry["code_field"] = "code2"
    catalog.write_text(yaml.safe_dump(cat), "utf-8")
    run_pipeline(catalog, config, out, engine)  # only code_field changed since the last run
    ca = pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="class_areas")
    assert 22 in set(ca["class_code"]) and 21 not in set(ca["class_code"])
