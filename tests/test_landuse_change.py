"""The change map, layer ``landuse_change`` (config ``outputs: {landuse_change: true}`` or
``--landuse-change``): every piece of each county whose land-use class changed.

Two-county case of conftest (10 km × 10 km counties 甲县 [0,10]×[0,10] km, 乙县 [10,20]×[0,10]):
- 甲县: forest 21 on [0,10]×[2.5,5] became urban 51: 10 km × 2.5 km = 2,500 ha,
  ΔM = 2,500 · (k_51 − k_21) = 2,500 · (0 − 1.00) = −2,500 hm²;
- 乙县: grass 31 on [10,15]×[0,5] became reservoir 43: 5 km × 5 km = 2,500 ha,
  ΔM = 2,500 · (2.10 − 0.33) = +4,425 hm².
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from conftest import box_km, write_case
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine


def _run(folder, landuse=None, config_extra=None, **options):
    catalog, config = write_case(folder / "case", landuse=landuse, config_extra=config_extra)
    engine = Engine(workers=1, progress=False)
    return run_pipeline(catalog, config, folder / "out", engine, **options).gpkg


def _check_sums(gpkg):
    """Per county: Σ area_ha = the off-diagonal transitions, Σ sf_change_ha = M_t − M_0."""
    ch = pyogrio.read_dataframe(gpkg, layer="landuse_change")
    tr = pyogrio.read_dataframe(gpkg, layer="transitions", read_geometry=False)
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers", read_geometry=False)
    off = tr[tr["from_code"] != tr["to_code"]].groupby("county_id")["area_ha"].sum()
    got = ch.groupby("county_id")["area_ha"].sum().reindex(off.index, fill_value=0.0)
    np.testing.assert_allclose(got, off, rtol=1e-9, atol=1e-9)
    dm = (cv["sf_target_ha"] - cv["sf_base_ha"]).set_axis(cv["county_id"])
    sf = ch.groupby("county_id")["sf_change_ha"].sum().reindex(dm.index, fill_value=0.0)
    np.testing.assert_allclose(sf, dm, rtol=1e-9, atol=1e-9)
    return ch, cv


def test_change_map_of_the_two_county_case(tmp_path):
    gpkg = _run(tmp_path, landuse_change=True)
    ch, _ = _check_sums(gpkg)
    table = ch.drop(columns="geometry").to_dict("records")
    assert table == [
        {"county_id": "110101", "from_code": 21, "to_code": 51, "area_ha": pytest.approx(2500.0),
         "sf_change_ha": pytest.approx(-2500.0)},
        {"county_id": "130102", "from_code": 31, "to_code": 43, "area_ha": pytest.approx(2500.0),
         "sf_change_ha": pytest.approx(4425.0)},
    ]  # fmt: skip
    # the pieces themselves, in the equal-area CRS
    assert shapely.equals(ch.geometry.iloc[0], box_km(0, 2.5, 10, 5))
    assert shapely.equals(ch.geometry.iloc[1], box_km(10, 0, 15, 5))
    np.testing.assert_allclose(ch.geometry.area / 1e4, ch["area_ha"], rtol=1e-12)


def test_unchanged_shape_new_class_across_a_county_border(tmp_path):
    # 2010 forest 21 on [0,20]×[5,10] (both counties); 2018 the same polygon as grass 31: the
    # geometry is identical, the class changed → one piece in each county, 5,000 ha each,
    # ΔM = 5,000 · (0.33 − 1.00) = −3,350 hm² each
    landuse = {
        2010: [(21, (0, 5, 20, 10)), (12, (0, 0, 20, 5))],
        2018: [(31, (0, 5, 20, 10)), (12, (0, 0, 20, 5))],
    }
    ch, _ = _check_sums(_run(tmp_path, landuse=landuse, landuse_change=True))
    assert list(ch["county_id"]) == ["110101", "130102"]
    np.testing.assert_allclose(ch["area_ha"], [5000.0, 5000.0])
    np.testing.assert_allclose(ch["sf_change_ha"], [-3350.0, -3350.0])
    assert shapely.equals(ch.geometry.iloc[0], box_km(0, 5, 10, 10))
    assert shapely.equals(ch.geometry.iloc[1], box_km(10, 5, 20, 10))


def test_pieces_lie_in_their_county_and_tiles_give_the_same_map(tmp_path):
    # changed polygons crossing the border, split and partly kept: pieces of several pairs
    landuse = {
        2010: [(21, (0, 0, 12, 6)), (31, (12, 0, 20, 6)), (12, (0, 6, 20, 10))],
        2018: [(21, (0, 0, 4, 6)), (51, (4, 0, 16, 3)), (43, (4, 3, 16, 6)),
               (31, (16, 0, 20, 6)), (12, (0, 6, 20, 10))],
    }  # fmt: skip
    whole = _run(tmp_path / "whole", landuse=landuse, landuse_change=True, partition_size=1)
    ch, _ = _check_sums(whole)
    counties = {"110101": box_km(0, 0, 10, 10), "130102": box_km(10, 0, 20, 10)}
    for row in ch.itertuples():
        county = counties[row.county_id]
        assert shapely.area(shapely.difference(row.geometry, county)) < 1e-6  # m²
    # 甲县: 21 → 51 on [4,10]×[0,3] = 1,800 ha, 21 → 43 on [4,10]×[3,6] = 1,800 ha;
    # 乙县: 21 → 51 and 21 → 43 on [10,12]×… = 600 ha each, 31 → 51 / 43 on [12,16]×… = 1,200 ha each
    sums = ch.groupby(["county_id", "from_code", "to_code"])["area_ha"].sum()
    expected = pd.Series({("110101", 21, 43): 1800.0, ("110101", 21, 51): 1800.0,
                          ("130102", 21, 43): 600.0, ("130102", 21, 51): 600.0,
                          ("130102", 31, 43): 1200.0, ("130102", 31, 51): 1200.0})  # fmt: skip
    np.testing.assert_allclose(sums[expected.index], expected, rtol=1e-12)
    tiled = _run(tmp_path / "tiled", landuse=landuse, landuse_change=True, partition_size=1,
                 tiles=2)  # fmt: skip
    ct = pyogrio.read_dataframe(tiled, layer="landuse_change")
    assert ct.drop(columns="geometry").equals(ch.drop(columns="geometry"))
    assert all(shapely.equals(a, b) for a, b in zip(ct.geometry, ch.geometry))


def test_off_by_default_on_from_the_config(tmp_path):
    off = _run(tmp_path / "off")
    assert "landuse_change" not in set(pyogrio.list_layers(off)[:, 0])
    on = _run(tmp_path / "on", config_extra={"outputs": {"landuse_change": True}})
    assert len(pyogrio.read_dataframe(on, layer="landuse_change")) == 2


def test_default_style_loss_red_gain_blue_with_aliases(tmp_path):
    gpkg = _run(tmp_path, landuse_change=True)
    con = sqlite3.connect(gpkg)
    try:
        (qml,) = con.execute(
            "SELECT styleQML FROM layer_styles WHERE f_table_name='landuse_change' AND useAsDefault"
        ).fetchone()
    finally:
        con.close()
    root = ET.fromstring(qml.encode())
    renderer = root.find("renderer-v2")
    assert (renderer.get("type"), renderer.get("attr")) == ("graduatedSymbol", "sf_change_ha")
    ranges = renderer.findall("ranges/range")
    # the classes enclose −2,500 and +4,425, symmetric around 0
    assert float(ranges[0].get("lower")) <= -4425 and float(ranges[-1].get("upper")) >= 4425
    colours = {}
    for sym in renderer.findall("symbols/symbol"):
        rgb = next(o for o in sym.iter("Option") if o.get("name") == "color").get("value")
        colours[sym.get("name")] = tuple(int(v) for v in rgb.split(",")[:3])
    r, _, b = colours[ranges[0].get("symbol")]  # the largest loss
    assert r > b
    r, _, b = colours[ranges[-1].get("symbol")]  # the largest gain
    assert b > r
    aliases = {a.get("field"): a.get("name") for a in root.findall("aliases/alias")}
    assert aliases["sf_change_ha"] == "标准林面积变化 (hm²)"
    assert aliases["from_code"] == "2010年土地利用类型代码"


def test_a_resumed_run_gives_the_same_map_from_its_cache(tmp_path):
    # the second run reads every zonal partition back from OUT/.ecovoucher-cache (numbers only:
    # the pieces travel as WKB)
    catalog, config = write_case(tmp_path / "case")
    engine = Engine(workers=1, progress=False)
    first = run_pipeline(catalog, config, tmp_path / "out", engine, landuse_change=True).gpkg
    a = pyogrio.read_dataframe(first, layer="landuse_change")
    assert list((tmp_path / "out" / ".ecovoucher-cache").rglob("zonal-*"))
    again = run_pipeline(catalog, config, tmp_path / "out", engine, landuse_change=True).gpkg
    b = pyogrio.read_dataframe(again, layer="landuse_change")
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert all(shapely.equals(x, y) for x, y in zip(a.geometry, b.geometry))


def _check_landuse_layers(gpkg, years=(2010, 2018)):
    """Per county and class, Σ area_ha of landuse_<year> = class_areas (to 1e-9); each piece
    inside its county."""
    ca = pyogrio.read_dataframe(gpkg, layer="class_areas", read_geometry=False)
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers")
    layers = {}
    for year in years:
        lu = pyogrio.read_dataframe(gpkg, layer=f"landuse_{year}")
        assert list(lu.columns) == [
            "county_id",
            "class_code",
            "class_group",
            "area_ha",
            "legend",
            "geometry",
        ]
        want = ca[ca["year"] == year].groupby(["county_id", "class_code"])["area_ha"].sum()
        have = lu.groupby(["county_id", "class_code"])["area_ha"].sum().reindex(want.index)
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-9)
        county = cv.set_index("county_id").geometry.reindex(lu["county_id"]).buffer(1e-6).values
        assert shapely.covers(county, lu.geometry.values).all()
        layers[year] = lu
    return layers


def test_landuse_layers_of_the_two_county_case(tmp_path):
    gpkg = _run(tmp_path, landuse_layers=True)
    lu = _check_landuse_layers(gpkg)
    # 2018: 甲县 forest [0,10]×[0,2.5] km = 2,500 ha, urban [0,10]×[2.5,5] = 2,500 ha, cropland
    # [0,10]×[5,10] = 5,000 ha; 乙县 reservoir 2,500, grass 2,500, cropland 5,000 (the cropland
    # polygon runs on past 乙县 to 25 km: its piece is clipped at 20 km)
    got = {(r.county_id, r.class_code): r.area_ha for r in lu[2018].itertuples()}
    assert got == pytest.approx({("110101", 12): 5000.0, ("110101", 21): 2500.0,
                                 ("110101", 51): 2500.0, ("130102", 12): 5000.0,
                                 ("130102", 31): 2500.0, ("130102", 43): 2500.0})  # fmt: skip
    crop = lu[2018].query("county_id == '130102' and class_code == 12").geometry.iloc[0]
    assert shapely.equals(crop, box_km(10, 5, 20, 10))
    assert set(lu[2010]["legend"]) == {"resdc"}
    assert set(lu[2018]["class_group"]) == {"cropland", "forest", "built-up", "grassland", "water"}
    # styled by group, with aliases naming the year
    with sqlite3.connect(gpkg) as con:
        qml, name = con.execute(
            "SELECT styleQML, styleName FROM layer_styles WHERE f_table_name='landuse_2018' "
            "AND useAsDefault"
        ).fetchone()
    assert name == "2018年土地利用 (默认)"
    root = ET.fromstring(qml.split("\n", 1)[1])
    renderer = root.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "class_group"
    aliases = {a.get("field"): a.get("name") for a in root.find("aliases")}
    assert aliases["class_code"] == "2018年土地利用类型代码"


def test_landuse_layers_tiled_equal_untiled(tmp_path):
    # polygons crossing the county border, split and partly kept (as in the tiles test above)
    landuse = {
        2010: [(21, (0, 0, 12, 6)), (31, (12, 0, 20, 6)), (12, (0, 6, 20, 10))],
        2018: [(21, (0, 0, 4, 6)), (51, (4, 0, 16, 3)), (43, (4, 3, 16, 6)),
               (31, (16, 0, 20, 6)), (12, (0, 6, 20, 10))],
    }  # fmt: skip
    whole = _run(tmp_path / "whole", landuse=landuse, landuse_layers=True, partition_size=1)
    tiled = _run(tmp_path / "tiled", landuse=landuse, landuse_layers=True, partition_size=1,
                 tiles=2)  # fmt: skip
    for year in (2010, 2018):
        a = pyogrio.read_dataframe(whole, layer=f"landuse_{year}")
        b = pyogrio.read_dataframe(tiled, layer=f"landuse_{year}")
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert shapely.equals(a.geometry.values, b.geometry.values).all()
    _check_landuse_layers(tiled)
