"""A vector year against a raster year: the raster year is polygonized (pixels of one class joined,
over the counties' extent, through the raster path's lookup table) and both years run the vector
path. Counties of conftest: A = [0,10]×[0,10] km, B = [10,20]×[0,10] km.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
import yaml
from rasterio.transform import from_origin

from conftest import LANDUSE, X0, Y0, write_case
from pipeline.cli import main
from pipeline.geom.cell_area import cell_areas
from pipeline.ingest.polygonize import polygonize_year
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS
from pipeline.settings.legends import load_legend

SERIAL = Engine(workers=1, progress=False)
TOP = Y0 + 10_000


def _clcd_2018(path: Path, inside: int | None = None) -> Path:
    """A CLCD grid of 100 m pixels (1 ha), 250 columns × 100 rows from (X0, TOP): rows 0–49
    (y 5–10 km) cropland 1 everywhere; rows 50–99 (y 0–5 km): A's columns 0–49 forest 2, 50–99
    impervious 8, B's columns 100–199 water 5, columns 200–249 (outside the counties) barren 7."""
    arr = np.ones((100, 250), np.uint8)
    arr[50:, :50] = 2
    arr[50:, 50:100] = 8
    arr[50:, 100:200] = 5
    arr[50:, 200:] = 7
    arr[0, 240] = 77  # no CLCD code, far outside the counties: only validate reads it
    if inside is not None:
        arr[99, 150] = inside  # inside B
    profile = dict(driver="GTiff", width=250, height=100, count=1, dtype="uint8", nodata=0,
                   crs=DEFAULT_EQUAL_AREA_CRS, transform=from_origin(X0, TOP, 100, 100))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
    return path


def _case(tmp_path: Path, inside: int | None = None) -> tuple[Path, Path]:
    """RESDC 2010 vector (conftest's LANDUSE[2010]) against CLCD 2018 raster."""
    catalog, config = write_case(tmp_path, landuse={2010: LANDUSE[2010]})
    _clcd_2018(tmp_path / "data" / "clcd_2018.tif", inside)
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    cat["datasets"]["landuse"][2018] = {
        "path": "data/clcd_2018.tif", "format": "raster", "legend": "clcd"
    }  # fmt: skip
    catalog.write_text(yaml.safe_dump(cat), "utf-8")
    return catalog, config


def _layers(gpkg: Path) -> dict:
    return {
        name: pyogrio.read_dataframe(gpkg, layer=name, read_geometry=False)
        for name in ("class_areas", "transitions", "county_vouchers")
    }


def test_resdc_vector_against_clcd_raster(tmp_path):
    catalog, config = _case(tmp_path)
    result = run_pipeline(catalog, config, tmp_path / "out", SERIAL, resume=False)
    got = _layers(result.gpkg)
    areas = {(r.county_id, r.year, str(r.class_code)): r.area_ha
             for r in got["class_areas"].itertuples()}  # fmt: skip
    # 2010 (vector): A 21 forest [0,10]×[0,5] = 5,000 ha, 12 cropland [0,10]×[5,10] = 5,000 ha;
    # B 12 5,000 ha, 31 grass 5,000 ha. 2018 (pixels of 1 ha): A cropland 1: 100 cols × 50 rows
    # = 5,000 ha, forest 2: 50 × 50 = 2,500 ha, impervious 8: 2,500 ha; B cropland 5,000 ha,
    # water 5: 100 × 50 = 5,000 ha. Polygon areas = pixel counts × 1 ha to 1e-9 relative.
    expect = {
        ("110101", 2010, "21"): 5000.0, ("110101", 2010, "12"): 5000.0,
        ("130102", 2010, "12"): 5000.0, ("130102", 2010, "31"): 5000.0,
        ("110101", 2018, "1"): 5000.0, ("110101", 2018, "2"): 2500.0,
        ("110101", 2018, "8"): 2500.0, ("130102", 2018, "1"): 5000.0,
        ("130102", 2018, "5"): 5000.0,
    }  # fmt: skip
    assert areas.keys() == expect.keys()
    for key, ha in expect.items():
        assert areas[key] == pytest.approx(ha, rel=1e-9)
    t = got["transitions"]
    trans = {(r.county_id, str(r.from_code), str(r.to_code)): r.area_ha for r in t.itertuples()}
    # A: 21 → 2 2,500, 21 → 8 2,500, 12 → 1 5,000; B: 12 → 1 5,000, 31 → 5 5,000
    assert trans == pytest.approx({
        ("110101", "21", "2"): 2500.0, ("110101", "21", "8"): 2500.0,
        ("110101", "12", "1"): 5000.0, ("130102", "12", "1"): 5000.0,
        ("130102", "31", "5"): 5000.0,
    }, rel=1e-9)  # fmt: skip
    assert set(t["from_group"]) == {"forest", "cropland", "grassland"}
    # M (shipped k: RESDC 21 1.00, 12 0, 31 0.33; CLCD 2 1.00, 1 0, 8 0, 5 2.10):
    # A: M_0 = 5,000, M_t = 2,500, ΔM = −2,500 = 2,500·(1 − 1) + 2,500·(0 − 1) + 5,000·(0 − 0)
    # B: M_0 = 1,650, M_t = 10,500, ΔM = 8,850 = 5,000·(0 − 0) + 5,000·(2.10 − 0.33)
    v = got["county_vouchers"].set_index("county_id")
    assert v.loc["110101", "static_voucher_ha"] == pytest.approx(-2500.0, abs=1e-9)
    assert v.loc["130102", "static_voucher_ha"] == pytest.approx(8850.0, abs=1e-9)
    assert (v["sf_target_ha"] - v["sf_base_ha"] - v["static_voucher_ha"]).abs().max() < 1e-9
    notes = result.inputs.notes
    assert any("raster polygonized against a vector year" in n for n in notes)
    # tiled == untiled
    tiled = run_pipeline(catalog, config, tmp_path / "tiled", SERIAL, resume=False, tiles=2)
    for name, frame in _layers(tiled.gpkg).items():
        assert frame.equals(got[name]), name


def test_unknown_pixels_inside_the_counties_are_named(tmp_path, capsys):
    # 99 inside B stops the run; 77 far outside the counties does not (the run ran fine above)
    catalog, config = _case(tmp_path, inside=99)
    code = main(["run", "--catalog", str(catalog), "--config", str(config), "--out",
                 str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "clcd_2018.tif" in err and "99 (1 px)" in err and "77" not in err
    assert not (tmp_path / "out" / "eco_vouchers.gpkg").exists()
    # validate reads every pixel of the file: the 77 outside the counties too
    catalog, config = _case(tmp_path / "v")
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 2
    assert "77 (1 px)" in capsys.readouterr().err


def test_lonlat_grid_polygons_against_exact_cell_areas(tmp_path):
    # a CLCD-like lon/lat grid of 0.00025° (~25 m) cells, 400 × 400 px at 116–116.1°E,
    # 39.9–40°N: class 2 on a disc-ish blob, 4 elsewhere, one county covering the grid
    res = 0.00025
    yy, xx = np.mgrid[0:400, 0:400]
    arr = np.where((yy - 200) ** 2 + (xx - 180) ** 2 < 120**2, 2, 4).astype(np.uint8)
    arr[:, 390:] = 5  # a strip of water along the east edge (long straight edges)
    path = tmp_path / "ll.tif"
    transform = from_origin(116.0, 40.0, res, res)
    with rasterio.open(path, "w", driver="GTiff", width=400, height=400, count=1, dtype="uint8",
                       nodata=0, crs="EPSG:4326", transform=transform) as dst:  # fmt: skip
        dst.write(arr, 1)
    # the run's Albers on the grid's own ellipsoid (WGS84), so that only polygonizing differs
    # (with the default Krasovsky Albers the datum adds the documented ~3.4e-5: docs/legends.md)
    albers = DEFAULT_EQUAL_AREA_CRS.replace("+ellps=krass", "+ellps=WGS84")
    county = gpd.GeoDataFrame(
        {"county_id": ["c"]}, geometry=[shapely.box(115.9, 39.8, 116.2, 40.1)], crs="EPSG:4326"
    ).to_crs(albers)
    notes: list[str] = []
    polys = polygonize_year(2020, path, None, load_legend("clcd"), county, "x", notes)
    got = polys.assign(a=polys.area).groupby("class_code")["a"].sum()
    cells = cell_areas("EPSG:4326", tuple(transform)[:6], 400, 400, albers)
    per_row = cells.rows(0, 400)[:, None].repeat(400, 1)  # exact ellipsoidal box of each cell
    exact = {c: float(per_row[arr == c].sum()) for c in (2, 4, 5)}
    rel = max(abs(got[c] - exact[c]) / exact[c] for c in exact)
    # each pixel's polygon is the quadrilateral of its corners in the Albers; the exact box is
    # bounded by parallels, arcs in the Albers: measured max relative difference 2e-12
    print("lon/lat polygonized vs exact cell areas, max relative difference", rel)
    assert rel < 1e-9, rel
    assert "edges cut at every pixel corner" in notes[0]


def test_a_raster_year_of_tiles_against_a_vector_year(tmp_path):
    # the CLCD grid above cut into two tiles (columns 0–129 and 130–249): the same areas
    catalog, config = _case(tmp_path)
    data = tmp_path / "data"
    with rasterio.open(data / "clcd_2018.tif") as src:
        arr, profile = src.read(1), src.profile
    for name, c0, c1 in (("t0.tif", 0, 130), ("t1.tif", 130, 250)):
        tile = {**profile, "width": c1 - c0,
                "transform": from_origin(X0 + 100 * c0, TOP, 100, 100)}  # fmt: skip
        with rasterio.open(data / name, "w", **tile) as dst:
            dst.write(arr[:, c0:c1], 1)
    whole = _layers(run_pipeline(catalog, config, tmp_path / "a", SERIAL, resume=False).gpkg)
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    cat["datasets"]["landuse"][2018]["path"] = ["data/t0.tif", "data/t1.tif"]
    catalog.write_text(yaml.safe_dump(cat), "utf-8")
    tiles = _layers(run_pipeline(catalog, config, tmp_path / "b", SERIAL, resume=False).gpkg)
    a = whole["class_areas"].set_index(["county_id", "year", "class_code"])["area_ha"]
    b = tiles["class_areas"].set_index(["county_id", "year", "class_code"])["area_ha"]
    assert b.sort_index().index.equals(a.sort_index().index)
    assert b.sort_index().to_numpy() == pytest.approx(a.sort_index().to_numpy(), rel=1e-12)
