"""Styles, aliases and the QGIS project in eco_vouchers.gpkg, checked with sqlite3 (and, when QGIS is
installed, with a real headless QGIS in a separate process)."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from qgis_support import QGIS_ENV, QGIS_PYTHON, needs_qgis, qgis_check

from conftest import write_case
from pipeline.output.legend import diverging_bounds, sequential_bounds
from pipeline.output.qgis import style_geopackage
from pipeline.run import run_pipeline
from pipeline.runtime.atomic import final_name, partial_path
from pipeline.runtime.engine import Engine


@pytest.fixture(scope="module")
def gpkg(tmp_path_factory) -> Path:
    """The two-county case, run and styled (E: 甲县 −5000 demand, 乙县 +2655 supply)."""
    folder = tmp_path_factory.mktemp("styling") / "生态券 样式"
    catalog, config = write_case(folder)
    out = run_pipeline(catalog, config, folder / "out", Engine(workers=1, progress=False)).gpkg
    style_geopackage(out, (2010, 2018))
    return out


def _rows(path: Path, sql: str, args=()) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _covered(qml: str, values) -> list[float]:
    """Values that fall in no range of a graduated QML (QGIS: lower ≤ v ≤ upper)."""
    ranges = [
        (float(r.get("lower")), float(r.get("upper")))
        for r in ET.fromstring(qml.encode()).find("renderer-v2").findall("ranges/range")
    ]
    return [v for v in values if not any(lo <= v <= hi for lo, hi in ranges)]


def test_layer_styles_rows_follow_qgis_rules(gpkg):
    rows = _rows(
        gpkg,
        "SELECT f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName, "
        "useAsDefault FROM layer_styles",
    )
    geom = dict(_rows(gpkg, "SELECT table_name, column_name FROM gpkg_geometry_columns"))
    assert geom["county_vouchers"] == "geom"
    assert rows
    for catalog, schema, table, gcol, name, _ in rows:
        assert schema == "" and catalog == "", (table, name)  # NULL schema: QGIS ignores the row
        assert gcol == geom.get(table, ""), (table, name)
    defaults: dict[str, int] = {}
    for _, _, table, _, _, default in rows:
        defaults[table] = defaults.get(table, 0) + int(default)
    layers = {name for name, _ in pyogrio.list_layers(gpkg)} - {"layer_styles"}
    assert set(defaults) == layers  # every layer has exactly one default style
    assert all(n == 1 for n in defaults.values()), defaults
    names = {r[4] for r in rows if r[2] == "county_vouchers"}
    assert names == {
        "生态券 E (默认)", "M_0 2010年标准林面积", "M_t 2018年标准林面积", "静态生态券 ΔM",
        "供需角色 role",
    }  # fmt: skip
    assert _rows(gpkg, "SELECT data_type FROM gpkg_contents WHERE table_name='layer_styles'") == [
        ("attributes",)
    ]


def test_every_qml_parses_and_default_classes_cover_every_feature(gpkg):
    styles = _rows(gpkg, "SELECT f_table_name, styleName, styleQML, useAsDefault FROM layer_styles")
    values = {
        col: [r[0] for r in _rows(gpkg, f"SELECT {col} FROM county_vouchers")]
        for col in ("voucher_ha", "static_voucher_ha", "sf_base_ha", "sf_target_ha")
    }
    assert sorted(values["voucher_ha"]) == pytest.approx([-5000, 2655])
    for _table, name, qml, _default in styles:
        assert qml.startswith("<!DOCTYPE qgis")
        root = ET.fromstring(qml.encode())
        assert root.tag == "qgis", name
        renderer = root.find("renderer-v2")
        if renderer is not None and renderer.get("type") == "graduatedSymbol":
            attr = renderer.get("attr")
            ranges = renderer.findall("ranges/range")
            symbols = {s.get("name") for s in renderer.findall("symbols/symbol")}
            assert {r.get("symbol") for r in ranges} <= symbols
            assert _covered(qml, values[attr]) == [], (name, attr)
    default = next(s for s in styles if s[0] == "county_vouchers" and s[3])
    renderer = ET.fromstring(default[2].encode()).find("renderer-v2")
    assert (renderer.get("type"), renderer.get("attr")) == ("graduatedSymbol", "voucher_ha")
    ranges = renderer.findall("ranges/range")
    assert len(ranges) == 7
    # symmetric around 0: 5000 rounded up to two significant figures is 5000
    assert float(ranges[0].get("lower")) == -5000.0 and float(ranges[-1].get("upper")) == 5000.0
    assert float(ranges[3].get("lower")) == -float(ranges[3].get("upper"))
    assert ranges[0].get("label").startswith("需求") and ranges[-1].get("label").startswith("供给")


def test_demand_red_supply_blue(gpkg):
    qml = _rows(
        gpkg,
        "SELECT styleQML FROM layer_styles WHERE f_table_name='county_vouchers' AND useAsDefault",
    )[0][0]
    syms = ET.fromstring(qml.encode()).find("renderer-v2").findall("symbols/symbol")
    colours = {
        s.get("name"): tuple(
            int(v) for v in next(o for o in s.iter("Option") if o.get("name") == "color")
            .get("value").split(",")[:3]
        )
        for s in syms
    }  # fmt: skip
    r, _, b = colours["0"]  # most negative class: demand
    assert r > b
    r, _, b = colours["6"]  # most positive class: supply
    assert b > r


def test_role_style_is_categorized(gpkg):
    qml = _rows(gpkg, "SELECT styleQML FROM layer_styles WHERE styleName='供需角色 role'")[0][0]
    renderer = ET.fromstring(qml.encode()).find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol"
    assert {c.get("value") for c in renderer.findall("categories/category")} == {
        "demand", "supply", "balanced",
    }  # fmt: skip


def test_aliases_in_qml_and_data_columns(gpkg):
    qml = _rows(
        gpkg,
        "SELECT styleQML FROM layer_styles WHERE f_table_name='county_vouchers' AND useAsDefault",
    )[0][0]
    aliases = {
        a.get("field"): a.get("name") for a in ET.fromstring(qml.encode()).findall("aliases/alias")
    }
    assert aliases["sf_base_ha"] == "2010年标准林面积 (hm²)"
    assert aliases["sf_target_ha"] == "2018年标准林面积 (hm²)"
    assert aliases["voucher_ha"] == "动态生态券 E (hm²)"
    dc = {
        (t, c): (n, d)
        for t, c, n, d in _rows(
            gpkg, "SELECT table_name, column_name, name, description FROM gpkg_data_columns"
        )
    }
    assert dc[("county_vouchers", "sf_base_ha")][0] == "2010年标准林面积 (hm²)"
    assert "base year 2010" in dc[("county_vouchers", "sf_base_ha")][1]
    assert dc[("class_areas", "area_ha")][0] == "面积 (hm²)"
    ext = _rows(
        gpkg, "SELECT extension_name FROM gpkg_extensions WHERE table_name='gpkg_data_columns'"
    )
    assert ext == [("gpkg_schema",)]


def test_project_in_geopackage_names_every_layer(gpkg):
    rows = _rows(gpkg, "SELECT name, metadata, content FROM qgis_projects")
    assert [r[0] for r in rows] == ["eco_vouchers"]
    with zipfile.ZipFile(io.BytesIO(bytes.fromhex(rows[0][2]))) as zf:
        (name,) = zf.namelist()
        assert name.endswith(".qgs")
        root = ET.fromstring(zf.read(name))
    sources = [ml.findtext("datasource") for ml in root.iter("maplayer")]
    layers = {name for name, _ in pyogrio.list_layers(gpkg)} - {"layer_styles"}
    assert {"county_vouchers", "class_areas", "summary"} <= layers
    assert sorted(sources) == sorted(f"./eco_vouchers.gpkg|layername={t}" for t in layers)
    assert root.find("properties/Paths/Absolute").text == "false"
    tree = [el.get("name") for el in root.iter("layer-tree-layer")]
    assert tree[0] == "县级生态券 county_vouchers"  # the map first, tables below
    styles = {s.get("name") for s in root.iter("map-layer-style")}
    assert "M_0 2010年标准林面积" in styles


def test_restyling_is_idempotent(gpkg, tmp_path):
    copy = tmp_path / "eco_vouchers.gpkg"  # the project names the file: keep its name
    shutil.copy(gpkg, copy)
    style_geopackage(copy, (2010, 2018))
    count = "SELECT count(*) FROM layer_styles"
    assert _rows(copy, count) == _rows(gpkg, count)
    assert _rows(copy, "SELECT content FROM qgis_projects") == _rows(
        gpkg, "SELECT content FROM qgis_projects"
    )


def test_trades_layer_gets_a_line_style(gpkg, tmp_path):
    copy = tmp_path / "trades.gpkg"
    shutil.copy(gpkg, copy)
    crs = pyogrio.read_info(copy, layer="county_vouchers")["crs"]
    trades = gpd.GeoDataFrame(
        {"seller_id": ["130102"], "seller_name": ["乙县"], "buyer_id": ["110101"],
         "buyer_name": ["甲县"], "volume_ha": [2655.0], "value_yuan": [1.3275e8], "level": ["region"]},
        geometry=[shapely.LineString([(1_015_000, 4_005_000), (1_005_000, 4_005_000)])],
        crs=crs,
    )  # fmt: skip
    pyogrio.write_dataframe(trades, copy, layer="trades", driver="GPKG")
    style_geopackage(copy, (2010, 2018))
    (qml,) = _rows(
        copy, "SELECT styleQML FROM layer_styles WHERE f_table_name='trades' AND useAsDefault"
    )[0]
    assert ET.fromstring(qml.encode()).find("renderer-v2").get("attr") == "volume_ha"
    assert _covered(qml, [2655.0]) == []
    assert _rows(
        copy, "SELECT f_geometry_column FROM layer_styles WHERE f_table_name='trades'"
    ) == [("geom",)]


@pytest.mark.parametrize(
    "values",
    [[0.0, 0.0], [3.0], [-7.5, -0.001], [1e-9, -2e6, 3e5, 0.0], [12.0, 12.0, 12.0], [-0.33, 0.29]],
)
def test_class_bounds_cover_all_values(values):
    v = np.array(values)
    d = diverging_bounds(v)
    assert len(d) == 8 and all(a < b for a, b in itertools.pairwise(d))
    assert d[0] == -d[-1] and d[3] == -d[4]
    assert d[0] <= v.min() and v.max() <= d[-1]
    s = sequential_bounds(v, 5)
    assert len(s) == 6 and all(a < b for a, b in itertools.pairwise(s))
    assert s[0] <= v.min() and v.max() <= s[-1]


@needs_qgis
def test_qgis_check_passes(gpkg, tmp_path):
    check = qgis_check()
    if check is None:
        pytest.skip("shared/tools/qgis_check.py not found")
    run = subprocess.run(
        [QGIS_PYTHON, str(check), str(gpkg), str(tmp_path / "check.png")],
        capture_output=True, text=True, timeout=300, env=QGIS_ENV,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "ALL QGIS CHECKS PASSED" in out


_OPEN_PROJECT = r"""
import json, os, sys
from qgis.core import QgsApplication, QgsMapRendererSequentialJob, QgsMapSettings, QgsProject
from qgis.PyQt.QtCore import QSize, QUrl, QUrlQuery
from qgis.PyQt.QtGui import QColor

def drawn(lyr):
    # pixels the layer colours when drawn alone on white at its extent
    s = QgsMapSettings()
    s.setLayers([lyr]); s.setDestinationCrs(lyr.crs()); s.setExtent(lyr.extent())
    s.setOutputSize(QSize(200, 200)); s.setBackgroundColor(QColor("white"))
    job = QgsMapRendererSequentialJob(s); job.start(); job.waitForFinished()
    img = job.renderedImage()
    white = QColor("white").rgb()
    return sum(img.pixel(x, y) != white for x in range(0, 200, 4) for y in range(0, 200, 4))

def main(uri):
    p = QgsProject.instance()
    ok = p.read(uri)
    layers = []
    for node in p.layerTreeRoot().findLayers():
        lyr = node.layer()
        entry = {"name": node.name(), "valid": bool(lyr and lyr.isValid()),
                 "source": lyr.source() if lyr is not None else None}
        if lyr is not None and lyr.isValid():
            entry["features"] = lyr.featureCount()
            r = lyr.renderer() if lyr.isSpatial() else None
            entry["renderer"] = r.type() if r else None
            entry["styles"] = sorted(lyr.styleManager().styles())
            entry["alias"] = {f.name(): f.alias() for f in lyr.fields()}
            entry["drawn"] = drawn(lyr) if lyr.isSpatial() else None
        layers.append(entry)
    p.clear()
    return {"read": ok, "layers": layers}

app = QgsApplication([], False)
app.setPrefixPath("/usr", True)
app.initQgis()
target = sys.argv[1]
if target.endswith(".gpkg"):
    u = QUrl(); u.setScheme("geopackage"); u.setPath(os.path.abspath(target))
    q = QUrlQuery(); q.addQueryItem("projectName", "eco_vouchers"); u.setQuery(q)
    target = bytes(u.toEncoded()).decode()
result = main(target)
app.exitQgis()
print("RESULT" + json.dumps(result, ensure_ascii=False))
"""


def _open_in_qgis(target: Path) -> dict:
    """Open a project (a .qgz, or the one stored in a GeoPackage) in a headless QGIS: every layer
    of its tree, valid or not, with its source, features, renderer, styles and pixels drawn."""
    run = subprocess.run(
        [QGIS_PYTHON, "-c", _OPEN_PROJECT, str(target)],
        capture_output=True, text=True, timeout=300, env=QGIS_ENV,
    )  # fmt: skip
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT")), None)
    assert line, run.stdout + run.stderr
    return json.loads(line[len("RESULT") :])


@needs_qgis
def test_embedded_project_opens_in_qgis(gpkg):
    result = _open_in_qgis(gpkg)
    assert result["read"]
    layers = {entry["name"]: entry for entry in result["layers"]}
    assert {"县级生态券 county_vouchers", "各类用地面积 class_areas", "汇总与来源 summary"} <= set(
        layers
    )
    assert len(layers) == len(set(pyogrio.list_layers(gpkg)[:, 0]) - {"layer_styles"})
    assert all(entry["valid"] for entry in layers.values()), layers
    cv = layers["县级生态券 county_vouchers"]
    assert cv["features"] == 2 and cv["renderer"] == "graduatedSymbol"
    assert len(cv["styles"]) == 5
    assert cv["alias"]["sf_target_ha"] == "2018年标准林面积 (hm²)"


@pytest.fixture(scope="module")
def moved(tmp_path_factory) -> Path:
    """A run's output folder as the run wrote it (not restyled afterwards), then moved: users copy
    result folders around."""
    folder = tmp_path_factory.mktemp("moved")
    catalog, config = write_case(folder / "case")
    run_pipeline(catalog, config, folder / "out", Engine(workers=1, progress=False))
    target = folder / "搬到别处 moved" / "结果"
    target.parent.mkdir()
    shutil.move(folder / "out", target)
    return target


def _project_sources(path: Path) -> list[str]:
    """The layer sources written in the project stored in a GeoPackage, or in a .qgz."""
    if path.suffix == ".gpkg":
        (content,) = _rows(path, "SELECT content FROM qgis_projects")[0]
        data = bytes.fromhex(content if isinstance(content, str) else content.decode())
    else:
        data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        root = ET.fromstring(zf.read(next(n for n in zf.namelist() if n.endswith(".qgs"))))
    return [ml.findtext("datasource") for ml in root.iter("maplayer")]


def test_final_name_is_the_name_after_the_atomic_rename():
    tmp = partial_path(Path("out") / "eco_vouchers.gpkg")
    assert tmp.parent == Path("out") and tmp.name.startswith(".partial-")
    assert final_name(tmp) == "eco_vouchers.gpkg"
    assert final_name(Path("eco_vouchers.gpkg")) == "eco_vouchers.gpkg"
    assert final_name(Path(".partial-notes.txt")) == ".partial-notes.txt"  # not one of ours


@pytest.mark.parametrize("name", ["eco_vouchers.gpkg", "eco_vouchers.qgz"])
def test_project_names_the_geopackage_by_its_final_name_relatively(moved, name):
    # the GeoPackage was written as .partial-<pid>-<thread>-eco_vouchers.gpkg and renamed
    sources = _project_sources(moved / name)
    tables = {t for t, _ in pyogrio.list_layers(moved / "eco_vouchers.gpkg")} - {"layer_styles"}
    assert sorted(sources) == sorted(f"./eco_vouchers.gpkg|layername={t}" for t in tables)


@needs_qgis
@pytest.mark.parametrize("name", ["eco_vouchers.gpkg", "eco_vouchers.qgz"])
def test_project_opens_from_a_moved_folder_every_layer_valid_and_drawn(moved, name):
    result = _open_in_qgis(moved / name)
    assert result["read"]
    layers = {entry["name"]: entry for entry in result["layers"]}
    assert len(layers) == 4, layers  # county_vouchers, class_areas, transitions, summary
    for entry in layers.values():
        assert entry["valid"], entry
        # resolved against the folder where the project is now
        assert entry["source"].startswith(str(moved / "eco_vouchers.gpkg")), entry["source"]
        assert entry["features"] > 0, entry
    cv = layers["县级生态券 county_vouchers"]
    assert cv["renderer"] == "graduatedSymbol"
    assert cv["drawn"] > 100  # of 2,500 sampled pixels, the two counties fill most
    assert [e["name"] for e in layers.values() if e["drawn"] is not None] == [cv["name"]]


def test_sequential_top_class_is_the_top_tenth():
    """Values 1 … 100: quantile levels 0.225, 0.45, 0.675, 0.9 (numpy's linear quantiles:
    23.275, 45.55, 67.825, 90.1), rounded to two significant figures: 23, 46, 68, 90; the
    top class 90 – 100 holds the top 10 values, not the top 20."""
    assert sequential_bounds(np.arange(1.0, 101.0), 5) == [0.0, 23.0, 46.0, 68.0, 90.0, 100.0]
