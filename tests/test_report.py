"""Figures, tables, project file and report.html written by write_report on the two-county case.

County 甲县 (110101): E = −5000 hm² (demand); 乙县 (130102): E = +2655 hm² (supply).
Region: M_0 = 6650, M_t = 8575, demand 5000, supply 2655, net 2345 hm² (test_pipeline_end_to_end).
"""

from __future__ import annotations

import io
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from PIL import Image

from conftest import write_case
from pipeline.output.qgis import style_geopackage
from pipeline.output.report import write_report
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine

#: (width, height) in pixels: 10.5 × 6.4 in and 7.2 × 6.4 in at 150 dpi
PAIR_PX = (1575, 960)
MAP_PX = (1080, 960)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("report") / "生态券 报告"
    catalog, config = write_case(folder)
    gpkg = run_pipeline(catalog, config, folder / "out", Engine(workers=1, progress=False)).gpkg
    style_geopackage(gpkg, (2010, 2018))
    return gpkg, write_report(gpkg, gpkg.parent)


def test_returns_existing_files(run):
    gpkg, paths = run
    out = gpkg.parent
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert paths[-1] == out / "report.html"
    names = {p.relative_to(out).as_posix() for p in paths}
    assert {
        "eco_vouchers.qgz",
        "figures/standard_forest.png", "figures/standard_forest.svg",
        "figures/standard_forest_change.png", "figures/standard_forest_change.svg",
        "figures/vouchers.png", "figures/vouchers.svg",
        "tables/county_vouchers.csv", "tables/region_totals.csv",
        "tables/top10_demand.csv", "tables/top10_supply.csv",
        "eco_vouchers_tables.xlsx", "report.html",
    } <= names  # fmt: skip


@pytest.mark.parametrize(
    ("name", "size"),
    [("standard_forest", PAIR_PX), ("standard_forest_change", MAP_PX), ("vouchers", MAP_PX)],
)
def test_figures_have_size_and_are_not_blank(run, name, size):
    gpkg, _ = run
    png = gpkg.parent / "figures" / f"{name}.png"
    with Image.open(png) as img:
        assert img.size == size
        pixels = np.asarray(img.convert("RGB"), dtype=float)
    assert pixels.std() > 20  # a blank or single-colour image has ~0
    colours = {tuple(c) for c in pixels[::7, ::7].reshape(-1, 3).astype(int)}
    assert len(colours) > 20
    svg = ET.parse(png.with_suffix(".svg")).getroot()
    assert svg.tag.endswith("svg")


def test_voucher_map_shows_demand_red_and_supply_blue(run):
    gpkg, _ = run
    with Image.open(gpkg.parent / "figures" / "vouchers.png") as img:
        px = np.asarray(img.convert("RGB")).reshape(-1, 3).astype(int)
    red = np.all(px == (178, 24, 43), axis=1).sum()  # 甲县, E = −5000: darkest demand class
    blue = np.all(px == (209, 229, 240), axis=1).sum()  # 乙县, E = 2655: first supply class
    assert red > 10_000 and blue > 10_000


def test_figures_are_reproducible(run, tmp_path):
    gpkg, _ = run
    again = write_report(gpkg, tmp_path / "again")
    for name in ("vouchers.png", "vouchers.svg", "standard_forest.png"):
        first = (gpkg.parent / "figures" / name).read_bytes()
        second = next(p for p in again if p.name == name).read_bytes()
        assert first == second, name


def test_report_html_has_totals_counties_and_figures(run):
    gpkg, _ = run
    text = (gpkg.parent / "report.html").read_text("utf-8")
    for figure in ("6,650", "8,575", "5,000", "2,655", "2,345"):  # M_0, M_t, demand, supply, net
        assert figure in text, figure
    assert "甲县" in text and "乙县" in text
    assert text.count('src="data:image/png;base64,') == 3
    assert not re.search(r'(src|href)="(https?:|//)', text)  # self-contained
    assert "E = ΔM · G<sub>t</sub> · P<sub>t</sub>" in text
    assert "sha256=" in text  # provenance from summary
    if (gpkg.parent / "tables" / "transitions_by_class.csv").exists():
        assert "土地利用转移矩阵" in text


def test_csv_and_xlsx_tables(run):
    gpkg, _ = run
    tables = gpkg.parent / "tables"
    raw = (tables / "county_vouchers.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # utf-8-sig: Excel shows the Chinese correctly
    cv = pd.read_csv(tables / "county_vouchers.csv", encoding="utf-8-sig", dtype=str)
    assert len(cv) == 2
    e_col = "动态生态券 E (hm²) [voucher_ha]"
    assert sorted(float(v) for v in cv[e_col]) == pytest.approx([-5000, 2655])
    demand = pd.read_csv(tables / "top10_demand.csv", encoding="utf-8-sig", dtype={0: str})
    assert list(demand["县级行政区名称 [name]"]) == ["甲县"]
    supply = pd.read_csv(tables / "top10_supply.csv", encoding="utf-8-sig")
    assert list(supply["县级行政区名称 [name]"]) == ["乙县"]
    totals = pd.read_csv(tables / "region_totals.csv", encoding="utf-8-sig").set_index("键 [key]")
    assert totals.loc["net_ha", "数值 [value]"] == pytest.approx(2345)  # 5000 − 2655
    assert totals.loc["net_ha", "指标 [label]"] == "净需求（需求 − 供给）"
    wb = openpyxl.load_workbook(gpkg.parent / "eco_vouchers_tables.xlsx")
    assert {"县级生态券", "区域汇总", "需求前十", "供给前十"} <= set(wb.sheetnames)
    sheet = wb["县级生态券"]
    e = [c.value for c in sheet[1]].index(e_col) + 1
    assert sorted(sheet.cell(row=r, column=e).value for r in (2, 3)) == [-5000, 2655]
    assert sheet.cell(row=2, column=e).number_format == "#,##0.00"


def test_project_file_beside_the_geopackage(run):
    gpkg, _ = run
    with zipfile.ZipFile(gpkg.parent / "eco_vouchers.qgz") as zf:
        qgs = zf.read("eco_vouchers.qgs").decode("utf-8")
    assert "./eco_vouchers.gpkg|layername=county_vouchers" in qgs


def test_project_file_elsewhere_points_back(run, tmp_path):
    gpkg, _ = run
    out = tmp_path / "elsewhere"
    write_report(gpkg, out)
    with zipfile.ZipFile(out / "eco_vouchers.qgz") as zf:
        root = ET.fromstring(zf.read("eco_vouchers.qgs"))
    for ds in root.iter("datasource"):
        path = ds.text.split("|")[0]
        assert (out / path).resolve() == gpkg.resolve()


def test_report_without_styles_or_transitions(tmp_path, run):
    """A GeoPackage that was never styled still gets its project file and report."""
    gpkg, _ = run
    import sqlite3

    copy_dir = tmp_path / "plain"
    copy_dir.mkdir()
    copy = copy_dir / "eco_vouchers.gpkg"
    shutil.copy(gpkg, copy)
    con = sqlite3.connect(copy)
    con.execute("DROP TABLE qgis_projects")
    con.commit()
    con.close()
    paths = write_report(copy, copy_dir)
    with zipfile.ZipFile(io.BytesIO((copy_dir / "eco_vouchers.qgz").read_bytes())) as zf:
        assert "county_vouchers" in zf.read("eco_vouchers.qgs").decode()
    assert (copy_dir / "report.html") in paths


def test_maps_drawn_during_the_run_equal_maps_from_the_geopackage(tmp_path):
    # run_pipeline draws the maps in a thread from its in-memory county table while the
    # Monte Carlo and the GeoPackage run; they must be the very maps the GeoPackage gives
    catalog, config = write_case(tmp_path / "case")
    out = tmp_path / "out"
    gpkg = run_pipeline(catalog, config, out, Engine(workers=1, progress=False)).gpkg
    assert [p.name for p in out.iterdir() if p.name.startswith(".partial-")] == []
    again = write_report(gpkg, tmp_path / "again")
    for name in ("vouchers.png", "vouchers.svg", "standard_forest.svg"):
        drawn = (out / "figures" / name).read_bytes()
        assert drawn == next(p for p in again if p.name == name).read_bytes(), name


def test_maps_of_a_failed_run_are_removed(run, tmp_path):
    import pyogrio

    from pipeline.output.report import MapsInBackground

    counties = pyogrio.read_dataframe(run[0], layer="county_vouchers")
    maps = MapsInBackground(counties, (2010, 2018), tmp_path)
    maps.discard()  # what run_pipeline does when a later stage fails
    assert list(tmp_path.iterdir()) == []
