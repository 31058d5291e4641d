"""Land-use legends and coefficients per legend: the shipped tables, the crosswalks to Table 1,
validation messages, per-year coefficients, mixed-legend accounting (the M identity) and the
output tables' legend columns."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from pipeline.accounting.vouchers import account
from pipeline.errors import InputError
from pipeline.settings.catalog import load_catalog
from pipeline.settings.coefficients import coefficients_by_year, load_coefficients
from pipeline.settings.config import DEFAULT_COEFFICIENTS, DEFAULT_EQUAL_AREA_CRS, Config
from pipeline.settings.legends import GROUPS, SHIPPED, load_legend, shipped_coefficients
from pipeline.zonal.labels import in_legend_codes
from pipeline.zonal.vector import ZonalResult

GU2022 = load_coefficients(DEFAULT_COEFFICIENTS)


# --- the shipped tables --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_legend_and_its_coefficients_load(name, caplog):
    legend = load_legend(name)
    assert legend.shipped and legend.source  # each file says where its table comes from
    assert {c.group for c in legend.classes.values()} <= set(GROUPS)
    coef = load_coefficients(shipped_coefficients(legend))
    assert coef.legend is legend
    with caplog.at_level(logging.WARNING):
        coefficients_by_year({2010: legend}, [])
    # every forest, grassland and water class of a shipped legend has a k in its shipped file
    assert "have no k" not in caplog.text


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "resdc"])
def test_crosswalked_k_equals_table_1(name):
    # each class crosswalked to a RESDC class (`resdc:` in the file) takes that class's k in
    # gu2022.yaml (0 for a RESDC class that is not ecological, e.g. 53 其他建设用地)
    path = shipped_coefficients(load_legend(name))
    raw = yaml.safe_load(path.read_text("utf-8"))["classes"]
    coef = load_coefficients(path)
    crosswalked = {code: e["resdc"] for code, e in raw.items() if "resdc" in e}
    assert crosswalked
    for code, resdc in crosswalked.items():
        assert coef.k[code] == GU2022.of(resdc), (name, code, resdc)


def test_sandiao_examples_of_the_issue():
    sandiao = load_coefficients(shipped_coefficients(load_legend("sandiao")))
    # 三调 0301 乔木林地 → 有林地 1.00, 0305 灌木林地 → 0.89, 1101 河流水面 → 2.10
    assert sandiao.of("0301") == 1.00
    assert sandiao.of("0305") == 0.89
    assert sandiao.of("1101") == 2.10
    assert sandiao.of("0101") == 0.0  # cropland: not ecological
    # level-1 林地, the level-2 k weighted by the national 三调 areas:
    # 0.6946·1.00 + 0.0247·1.00 + 0.2063·0.89 + 0.0744·0.65 = 0.9513 → 0.95
    assert sandiao.of("03") == round(0.6946 + 0.0247 + 0.2063 * 0.89 + 0.0744 * 0.65, 2)
    # level-1 草地: 0.8059·0.28 + 0.0022·0.33 + 0.1919·0.19 = 0.2629 → 0.26
    assert sandiao.of("04") == round(0.8059 * 0.28 + 0.0022 * 0.33 + 0.1919 * 0.19, 2)


def test_text_codes_are_kept_exactly():
    sandiao = load_legend("sandiao")
    assert sandiao.text and "0301" in sandiao.classes and 301 not in sandiao.classes
    assert sandiao.codes_of([301, "0301", b"0101", 1101.0]) == ["301", "0301", "0101", "1101"]
    assert sandiao.unknown(["301", "0301", "05H1"]) == ["301"]
    erdiao = load_legend("gbt21010_2007")
    assert "011" in erdiao.classes and "11" in erdiao.classes  # 水田 and level-1 水域: two codes
    resdc = load_legend("resdc")
    assert resdc.codes_of(["21", 22.0, "021"]) == [21, 22, "021"]  # "021" is no RESDC number
    assert resdc.normalise([111, 124, 21]) == [11, 12, 21]  # RESDC's roll-up


def test_unknown_code_message_shows_codes_as_in_the_file():
    sandiao = load_legend("sandiao")
    msg = sandiao.unknown_message({"0399": 3, "301": 2}, "features")
    assert "legend 'sandiao'" in msg
    assert '"0399" (3 features)' in msg and '"301" (2 features)' in msg
    assert '"0301"' in msg  # the valid codes, quoted as in the file
    assert "leading zeros" in msg  # "301" looks like "0301" stored as a number
    clcd = load_legend("clcd")
    msg = clcd.unknown_message({12: 5}, "px")
    assert "legend 'clcd'" in msg and "12 (5 px)" in msg and "1, 2, 3" in msg


def test_modis_class_zero_is_a_class_and_internal_numbers_round_trip():
    modis = load_legend("modis_igbp")
    assert 0 in modis.classes and 255 in modis.nodata
    inside = modis.to_internal([0, 16, 5])
    assert inside.tolist() == [1, 17, 6]  # positions: 0 is "no data" in the zonal stage
    assert modis.from_internal(inside) == [0, 16, 5]
    assert modis.from_internal([0]) == [-1]  # a missing side of a transition
    resdc = load_legend("resdc")
    assert resdc.to_internal([11, 64]).tolist() == [11, 64]  # RESDC numbers stay as they were
    sandiao = load_legend("sandiao")
    assert sandiao.from_internal(sandiao.to_internal(["0301", "05H1"])) == ["0301", "05H1"]
    assert sandiao.from_internal([0]) == [""]


# --- legend and coefficient files of one's own -----------------------------------------------


def _write(path, text):
    path.write_text(text, "utf-8")
    return path


def test_own_legend_and_coefficients_keyed_to_it(tmp_path):
    _write(tmp_path / "igbp.yaml", "name: my IGBP\nnodata: [255]\nclasses:\n"
           "  1: {name: Forest, group: forest}\n  2: {name: Grass, group: grassland}\n"
           "  3: {name: Crop, group: cropland}\n")  # fmt: skip
    sub = tmp_path / "coef"
    sub.mkdir()
    coef = load_coefficients(
        _write(sub / "k.yaml", "legend: ../igbp.yaml\nclasses:\n  1: {k: 1.0}\n  2: {k: 0.3}\n")
    )
    assert coef.legend.name == "my IGBP" and coef.of(2) == 0.3 and coef.of(3) == 0.0
    # a code that is not of the legend: named with the legend
    with pytest.raises(InputError, match=r"codes 9 are not classes of legend .*igbp\.yaml"):
        load_coefficients(_write(sub / "bad.yaml", "legend: ../igbp.yaml\nclasses:\n  9: {k: 1}\n"))


def test_unquoted_text_codes_are_explained(tmp_path):
    # YAML 1.1 reads an unquoted 0301 as the octal number 193
    path = _write(tmp_path / "k.yaml", "legend: sandiao\nclasses:\n  0301: {k: 1.0}\n")
    with pytest.raises(InputError, match="octal number 193"):
        load_coefficients(path)
    path = _write(tmp_path / "k2.yaml", 'legend: sandiao\nclasses:\n  "0399": {k: 1.0}\n')
    with pytest.raises(InputError, match=r'codes "0399" are not classes of legend \'sandiao\''):
        load_coefficients(path)


def test_bad_legend_files(tmp_path):
    mixed = _write(tmp_path / "mixed.yaml", 'name: m\nclasses:\n  1: {name: a, group: forest}\n'
                   '  "02": {name: b, group: water}\n')  # fmt: skip
    with pytest.raises(InputError, match="all numbers or all text"):
        load_legend(mixed)
    both = _write(tmp_path / "both.yaml",
                  "name: b\nnodata: [1]\nclasses:\n  1: {name: a, group: forest}\n")  # fmt: skip
    with pytest.raises(InputError, match="both classes and nodata"):
        load_legend(both)
    group = _write(tmp_path / "group.yaml", "name: g\nclasses:\n  1: {name: a, group: woods}\n")
    with pytest.raises(InputError, match=r"classes\.1\.group"):
        load_legend(group)
    with pytest.raises(InputError, match=r"no shipped legend.*resdc, sandiao"):
        load_legend("sandiao2019")


def test_catalog_legend_names_and_paths(tmp_path):
    (tmp_path / "legends").mkdir()
    _write(
        tmp_path / "legends" / "mine.yaml", "name: mine\nclasses:\n  7: {name: x, group: water}\n"
    )
    cat = {
        "datasets": {
            "counties": {"path": "c.shp"},
            "landuse": {
                2009: {"path": "a.shp", "legend": "gbt21010_2007", "code_field": "DLBM"},
                2019: {"path": "b.shp", "legend": "legends/mine.yaml"},
                2020: {"path": "d.shp"},
            },
            "socioeconomic": {"path": "s.csv"},
        }
    }
    path = _write(tmp_path / "catalog.yaml", yaml.safe_dump(cat))
    legends = load_catalog(path).legends()
    assert legends[2009].key == "gbt21010_2007"
    assert legends[2019].name == "mine" and legends[2019].tag == "mine.yaml"
    assert legends[2020].key == "resdc"  # the default
    cat["datasets"]["landuse"][2019]["legend"] = "legends/missing.yaml"
    with pytest.raises(InputError, match=r"landuse\.2019\.legend.*missing\.yaml not found"):
        load_catalog(_write(tmp_path / "catalog.yaml", yaml.safe_dump(cat)))


def test_coefficients_by_year_rules(tmp_path, caplog):
    resdc, sandiao, clcd = (load_legend(n) for n in ("resdc", "sandiao", "clcd"))
    # omitted: each year its legend's shipped file
    by_year = coefficients_by_year({2009: resdc, 2019: sandiao}, [])
    assert by_year[2009].path == DEFAULT_COEFFICIENTS
    assert by_year[2019].of("0305") == 0.89
    # a file keyed to a legend no year uses is an error
    clcd_k = load_coefficients(shipped_coefficients(clcd))
    with pytest.raises(InputError, match=r"keyed to legend 'clcd'.*no land-use year"):
        coefficients_by_year({2009: resdc, 2019: sandiao}, [clcd_k])
    # a file of one's own for one legend; the other year keeps its shipped file
    own = load_coefficients(
        _write(tmp_path / "k.yaml", 'legend: sandiao\nclasses:\n  "0301": {k: 1.0}\n')
    )
    with caplog.at_level(logging.WARNING):
        by_year = coefficients_by_year({2009: resdc, 2019: sandiao}, [own])
    assert by_year[2019] is own and by_year[2009].path == DEFAULT_COEFFICIENTS
    # … and its forest, grassland and water classes without a k are named in a warning
    assert "have no k" in caplog.text and '"0305" 灌木林地 (forest)' in caplog.text
    # two files for one legend
    with pytest.raises(InputError, match="same legend"):
        coefficients_by_year({2019: sandiao}, [own, own])
    # a legend of one's own needs a coefficient file
    _write(tmp_path / "mine.yaml", "name: mine\nclasses:\n  7: {name: x, group: water}\n")
    mine = load_legend(tmp_path / "mine.yaml")
    with pytest.raises(InputError, match="has no shipped coefficients"):
        coefficients_by_year({2019: mine}, [])


# --- two years, two legends ------------------------------------------------------------------


def _one_county():
    counties = gpd.GeoDataFrame(
        {"county_id": ["c"], "name": ["x"], "province": ["p"], "city": ["q"]},
        geometry=[shapely.box(0, 0, 1000, 2000)],
        crs=DEFAULT_EQUAL_AREA_CRS,
    )
    counties["area_m2"] = counties.area  # 200 ha
    socio = pd.DataFrame({"gdp_yuan": [1e9], "population": [1e5]},
                         index=pd.Index(["c"], name="county_id"))  # fmt: skip
    config = Config.model_validate(
        {"years": {"base": 2009, "target": 2019}, "price_yuan_per_ha": 1,
         "national": {2019: {"gdp_per_capita_yuan": 1e4, "population_density_per_km2": 100}}}
    )  # fmt: skip
    return counties, socio, config


def test_mixed_legends_hold_the_m_identity():
    # RESDC 2009 against 三调 2019; transitions (ha):
    #   100 21 有林地 → "0301" 乔木林地   k 1.00 → 1.00
    #    50 11 水田   → "0301"            k 0    → 1.00
    #    30 42 湖泊   → "0101" 水田       k 2.10 → 0
    #    20 31 高覆盖度草地 → "0404" 其他草地  k 0.33 → 0.19
    # M_0 = 100 + 0 + 63 + 6.6 = 169.6; M_t = 100 + 50 + 0 + 3.8 = 153.8; ΔM = −15.8
    # Σ area·(k_to − k_from) = 0 + 50 − 63 − 2.8 = −15.8
    counties, socio, config = _one_county()
    moves = [(21, "0301", 100.0), (11, "0301", 50.0), (42, "0101", 30.0), (31, "0404", 20.0)]
    base = pd.DataFrame([(c, 2009, f, a) for f, _, a in moves for c in "c"],
                        columns=["county_id", "year", "class_code", "area_ha"])  # fmt: skip
    base = base.groupby(["county_id", "year", "class_code"], as_index=False)["area_ha"].sum()
    target = pd.DataFrame([("c", 2019, t, a) for _, t, a in moves],
                          columns=["county_id", "year", "class_code", "area_ha"])  # fmt: skip
    target = target.groupby(["county_id", "year", "class_code"], as_index=False)["area_ha"].sum()
    class_areas = pd.concat([base.astype({"class_code": object}), target], ignore_index=True)
    legends = {2009: load_legend("resdc"), 2019: load_legend("sandiao")}
    k = coefficients_by_year(legends, [])
    row = account(counties, class_areas, socio, config, k).county_vouchers.iloc[0]
    assert row["sf_base_ha"] == pytest.approx(169.6, abs=1e-9)
    assert row["sf_target_ha"] == pytest.approx(153.8, abs=1e-9)
    identity = sum(a * (k[2019].of(t) - k[2009].of(f)) for f, t, a in moves)
    assert row["static_voucher_ha"] == pytest.approx(identity, abs=1e-9)
    assert identity == pytest.approx(-15.8, abs=1e-12)


def test_zonal_numbers_back_to_legend_codes_with_groups():
    # the zonal stage's numbers: RESDC codes as themselves; 三调 codes as positions
    resdc, sandiao = load_legend("resdc"), load_legend("sandiao")
    s = {c: int(v) for c, v in zip(["0301", "0101"], sandiao.to_internal(["0301", "0101"]))}
    ca = pd.DataFrame(
        {"county_id": ["c"] * 4, "year": [2009, 2009, 2019, 2019],
         "class_code": np.array([21, 11, s["0301"], s["0101"]], dtype=np.int16),
         "area_ha": [100.0, 50.0, 150.0, 0.5]}
    )  # fmt: skip
    tr = pd.DataFrame(
        {"county_id": ["c"] * 3, "from_code": np.array([21, 11, 0], dtype=np.int16),
         "to_code": np.array([s["0301"], s["0301"], s["0101"]], dtype=np.int16),
         "area_ha": [100.0, 50.0, 0.5]}
    )  # fmt: skip
    out = in_legend_codes(ZonalResult(ca, tr), {2009: resdc, 2019: sandiao}, (2009, 2019))
    # one legend has text codes: every code is text ("21"), so a column holds one type
    assert out.class_areas["class_code"].tolist() == ["21", "11", "0301", "0101"]
    assert out.class_areas["legend"].tolist() == ["resdc", "resdc", "sandiao", "sandiao"]
    t = out.transitions
    assert t["from_code"].tolist() == ["21", "11", "0"]
    assert t["to_code"].tolist() == ["0301", "0301", "0101"]
    assert t["from_group"].tolist() == ["forest", "cropland", "no data"]
    assert t["to_group"].tolist() == ["forest", "forest", "cropland"]
    assert set(t["from_legend"]) == {"resdc"} and set(t["to_legend"]) == {"sandiao"}


def test_one_numeric_legend_keeps_its_numbers_and_dtype():
    resdc = load_legend("resdc")
    ca = pd.DataFrame({"county_id": ["c"], "year": [2010], "class_code": np.array([21], np.int16),
                       "area_ha": [1.0]})  # fmt: skip
    tr = pd.DataFrame({"county_id": ["c"], "from_code": np.array([21], np.int16),
                       "to_code": np.array([64], np.int16), "area_ha": [1.0]})  # fmt: skip
    out = in_legend_codes(ZonalResult(ca, tr), {2010: resdc, 2018: resdc}, (2010, 2018))
    assert out.class_areas["class_code"].dtype == np.int16
    assert out.class_areas["class_code"].tolist() == [21]
    assert out.transitions["to_group"].tolist() == ["unused"]  # 64 沼泽地: RESDC's 未利用土地
    assert "from_legend" not in out.transitions.columns


def test_own_legend_on_a_lonlat_grid_of_another_ellipsoid_end_to_end(tmp_path):
    # a land-cover grid in lon/lat on Clarke 1866 (not WGS84), 0.005° cells, with a legend file of
    # its own (1 forest, 2 grass, 3 crop; 0 no data) and a coefficient file keyed to it by path;
    # the counties are the fixture's two 10 km squares in the Albers plane
    import subprocess
    import sys

    import rasterio
    from affine import Affine
    from pyproj import Geod, Transformer

    from conftest import write_case

    catalog_path, config_path = write_case(tmp_path)
    legends = tmp_path / "legends"
    legends.mkdir()
    _write(legends / "lc.yaml", "name: my land cover\nnodata: [0]\nclasses:\n"
           "  1: {name: forest, group: forest}\n  2: {name: grass, group: grassland}\n"
           "  3: {name: crop, group: cropland}\n")  # fmt: skip
    (tmp_path / "k").mkdir()
    _write(tmp_path / "k" / "lc_k.yaml", "legend: ../legends/lc.yaml\nclasses:\n"
           "  1: {k: 1.0}\n  2: {k: 0.3}\n")  # fmt: skip
    clarke = "+proj=longlat +ellps=clrk66 +no_defs"
    counties = gpd.read_file(tmp_path / "data" / "counties.gpkg")
    west, south, east, north = counties.to_crs(clarke).total_bounds
    res = 0.005
    x0, y0 = np.floor(west / res) * res - res, np.ceil(north / res) * res + res
    w, h = int(np.ceil((east - x0) / res)) + 2, int(np.ceil((y0 - south) / res)) + 2
    rng = np.random.default_rng(15)
    grids = {}
    for year in (2010, 2018):
        arr = rng.integers(1, 4, (h, w)).astype(np.uint8)
        grids[year] = arr
        with rasterio.open(tmp_path / f"lc_{year}.tif", "w", driver="GTiff", width=w, height=h,
                           count=1, dtype="uint8", crs=clarke, nodata=0,
                           transform=Affine(res, 0, x0, 0, -res, y0)) as dst:  # fmt: skip
            dst.write(arr, 1)
    cat = yaml.safe_load(catalog_path.read_text("utf-8"))
    cat["datasets"]["landuse"] = {
        y: {"path": f"lc_{y}.tif", "format": "raster", "legend": "legends/lc.yaml"}
        for y in (2010, 2018)
    }
    catalog_path.write_text(yaml.safe_dump(cat, allow_unicode=True), "utf-8")
    cfg = yaml.safe_load(config_path.read_text("utf-8"))
    cfg["coefficients"] = "k/lc_k.yaml"
    config_path.write_text(yaml.safe_dump(cfg, allow_unicode=True), "utf-8")
    out = tmp_path / "out"
    cli = subprocess.run([sys.executable, "-m", "pipeline", "-q", "run", "--catalog",
                          str(catalog_path), "--config", str(config_path), "--out", str(out)],
                         capture_output=True, text=True)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    import pyogrio

    ca = pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="class_areas")
    assert set(ca["legend"]) == {"lc.yaml"}
    # independent: every cell whose centre lies in the county (its vertices taken to the grid's
    # lon/lat, as the run does: edges are not densified), its area by Karney's geodesic polygon
    # area on Clarke 1866 (parallels densified), summed per class
    geod = Geod(ellps="clrk66")
    to_lonlat = Transformer.from_crs(counties.crs, clarke, always_xy=True)
    want = {}
    for cid, geom in zip(counties["adcode"], counties.geometry):
        ring = np.asarray(geom.exterior.coords)
        lon, lat = to_lonlat.transform(ring[:, 0], ring[:, 1])
        poly = shapely.Polygon(np.column_stack([lon, lat]))
        for i in range(h):
            for j in range(w):
                if not poly.contains(shapely.Point(x0 + (j + 0.5) * res, y0 - (i + 0.5) * res)):
                    continue
                lons = np.r_[np.linspace(x0 + j * res, x0 + (j + 1) * res, 20),
                             np.linspace(x0 + (j + 1) * res, x0 + j * res, 20)]  # fmt: skip
                lats = np.r_[np.full(20, y0 - (i + 1) * res), np.full(20, y0 - i * res)]
                a = abs(geod.polygon_area_perimeter(lons, lats)[0]) / 1e4
                for year in (2010, 2018):
                    key = (cid, year, int(grids[year][i, j]))
                    want[key] = want.get(key, 0.0) + a
    got = {(r.county_id, r.year, int(r.class_code)): r.area_ha for r in ca.itertuples()}
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key
    # vouchers follow from those areas: M = Σ A·k with the file's k (1: 1.0, 2: 0.3, 3: 0)
    cv = pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="county_vouchers")
    for r in cv.itertuples():
        m0 = sum(v * {1: 1.0, 2: 0.3}.get(c, 0.0) for (cid, y, c), v in got.items()
                 if cid == r.county_id and y == 2010)  # fmt: skip
        assert r.sf_base_ha == pytest.approx(m0, rel=1e-12)
