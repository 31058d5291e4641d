"""三调 data as the survey delivers it, end to end: a file geodatabase per county (layer DLTB, text
DLBM codes), two Gauss-Krüger zones, a glob per year, 二调 (GB/T 21010-2007) in the base year and
三调 (GB/T 21010-2017) in the target year. Areas against an independent ellipsoidal computation
(tests/synthetic_sandiao.py), the M identity across the two legends, tiled = untiled."""

from __future__ import annotations

import pandas as pd
import pyogrio
import pytest
import yaml
from synthetic_sandiao import ALBERS_CGCS2000, COUNTIES, ERDIAO_CODES, write_survey

from pipeline.runtime.engine import Engine
from pipeline.settings.coefficients import load_coefficients
from pipeline.settings.legends import load_legend, shipped_coefficients

SERIAL = Engine(workers=1, progress=False)


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    folder = tmp_path_factory.mktemp("三调")
    target = write_survey(folder, 2019)
    base = write_survey(folder, 2009, codes=ERDIAO_CODES, seed=9)
    socio = [
        {"code": c, "year": 2019, "gdp": 1e9, "pop": 1e5} for c, *_ in COUNTIES
    ]  # fmt: skip
    pd.DataFrame(socio).to_csv(folder / "socio.csv", index=False)
    catalog = {
        "datasets": {
            "counties": {"path": "counties.gpkg", "layer": "counties", "id_field": "adcode"},
            "landuse": {
                2009: {
                    "path": "sandiao_2009/*.gdb",
                    "layer": "DLTB",
                    "code_field": "DLBM",
                    "legend": "gbt21010_2007",
                },
                2019: {
                    "path": "sandiao_2019/*.gdb",
                    "layer": "DLTB",
                    "code_field": "DLBM",
                    "legend": "sandiao",
                },
            },
            "socioeconomic": {"path": "socio.csv"},
        }
    }
    config = {
        "years": {"base": 2009, "target": 2019},
        "equal_area_crs": ALBERS_CGCS2000,  # on CGCS2000's ellipsoid: areas are ellipsoidal
        "national": {2019: {"gdp_per_capita_yuan": 50000, "population_density_per_km2": 100}},
        "price_yuan_per_ha": 50000,
        # the Monte Carlo across the two legends, a range keyed LEGEND:CODE (parsed from YAML)
        "uncertainty": {
            "draws": 200,
            "coefficient_spread": 0.1,
            "coefficients": {"sandiao:0305": {"low": 0.8, "high": 1.0}},
        },
    }
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True), "utf-8")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return folder, base, target


def _run(folder, out, tiles=None):
    from pipeline.run import run_pipeline

    result = run_pipeline(folder / "catalog.yaml", folder / "config.yaml", folder / out, SERIAL,
                          tiles=tiles, resume=False)  # fmt: skip
    layers = {
        name: pyogrio.read_dataframe(result.gpkg, layer=name, read_geometry=False)
        for name in ("class_areas", "transitions", "county_vouchers")
    }
    return layers


def test_the_files_are_as_the_survey_delivers_them(survey):
    _, _, target = survey
    gdbs = sorted(target.folder.iterdir())
    assert [p.suffix for p in gdbs] == [".gdb"] * 4
    crs = {pyogrio.read_info(p, layer="DLTB")["crs"] for p in gdbs}
    assert crs == {"EPSG:4547", "EPSG:4548"}  # two Gauss-Krüger zones
    dltb = pyogrio.read_dataframe(gdbs[0], layer="DLTB", read_geometry=False)
    assert not pd.api.types.is_numeric_dtype(dltb["DLBM"])  # a text field
    assert set(dltb["DLBM"]) <= set(target.patches["code"])
    assert any(code.startswith("0") for code in dltb["DLBM"])  # text with its leading zero


def test_areas_match_the_ellipsoidal_computation_and_m_holds(survey):
    folder, base, target = survey
    got = _run(folder, "out")
    ca = got["class_areas"]
    # class codes are text, each year in its own legend
    assert set(ca.loc[ca["year"] == 2019, "legend"]) == {"sandiao"}
    assert set(ca.loc[ca["year"] == 2009, "legend"]) == {"gbt21010_2007"}
    for year, want in ((2009, base.expected), (2019, target.expected)):
        have = ca.loc[ca["year"] == year].set_index(["county_id", "class_code"])["area_ha"]
        want = want.set_index(["county_id", "code"])["area_m2"] / 1e4  # m² → ha
        want.index = want.index.set_names(["county_id", "class_code"])
        assert set(have.index) == set(want.index)
        pd.testing.assert_series_equal(
            have.sort_index(), want.sort_index().rename("area_ha"), rtol=1e-6, check_exact=False
        )
    # M_t − M_0 = Σ area · (k_to − k_from) per county, k of each year's own legend
    k0 = load_coefficients(shipped_coefficients(load_legend("gbt21010_2007")))
    kt = load_coefficients(shipped_coefficients(load_legend("sandiao")))
    tr = got["transitions"]
    assert {"from_group", "to_group", "from_legend", "to_legend"} <= set(tr.columns)
    tr["dk"] = [kt.of(t) - k0.of(f) for f, t in zip(tr["from_code"], tr["to_code"])]
    identity = (tr["area_ha"] * tr["dk"]).groupby(tr["county_id"]).sum()
    cv = got["county_vouchers"].set_index("county_id")
    static = cv["sf_target_ha"] - cv["sf_base_ha"]
    pd.testing.assert_series_equal(
        static.sort_index(), identity.sort_index(), check_names=False, rtol=0, atol=1e-9
    )
    # the Monte Carlo ran across the two legends (its percentiles are there, and spread)
    assert (cv["voucher_ha_p05"] <= cv["voucher_ha_p95"]).all()
    assert (cv["voucher_ha_p05"] < cv["voucher_ha_p95"]).any()


def test_tiled_equals_untiled(survey):
    folder, _, _ = survey
    whole = _run(folder, "out-whole")
    tiled = _run(folder, "out-tiled", tiles=2)
    for name in ("class_areas", "transitions"):
        pd.testing.assert_frame_equal(whole[name], tiled[name])
