"""The whole pipeline on the two-county fixture (tests/conftest.py), every number by hand."""

from __future__ import annotations

import pyogrio
import pytest

from pipeline.cli import main
from pipeline.engine import Engine
from pipeline.run import run_pipeline

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
