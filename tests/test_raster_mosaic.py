"""A raster year given as several files (tiles joined on one pixel lattice, never resampled), and
two raster years on one lattice with different extents (both put on the union extent).

The grid: pixels of 100 m (1 ha) in the default Albers, origin (X0, Y0 + 10 km); the two
counties of conftest are A = columns 0–99, B = columns 100–199, rows 0–99 (10,000 ha each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from conftest import X0, Y0, write_case
from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine
from pipeline.settings.catalog import load_catalog
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS

SERIAL = Engine(workers=1, progress=False)
TOP = Y0 + 10_000


def _tif(path: Path, arr: np.ndarray, col0: int = 0, row0: int = 0, crs=DEFAULT_EQUAL_AREA_CRS,
         nodata=0, res: float = 100.0, shift: float = 0.0) -> Path:  # fmt: skip
    """A tile whose first pixel is column col0, row row0 of the grid (``shift``: metres east)."""
    transform = from_origin(X0 + col0 * res + shift, TOP - row0 * res, res, res)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                       count=1, dtype=arr.dtype, crs=crs, transform=transform,
                       nodata=nodata) as dst:  # fmt: skip
        dst.write(arr, 1)
    return path


def _case(tmp_path: Path, years: dict) -> tuple[Path, Path]:
    """The conftest case with raster land use: year → the catalog's ``path`` (list or glob)."""
    catalog, config = write_case(tmp_path)
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    cat["datasets"]["landuse"] = {y: {"path": p, "format": "raster"} for y, p in years.items()}
    catalog.write_text(yaml.safe_dump(cat), "utf-8")
    return catalog, config


def _tiles_2010(data: Path) -> list[str]:
    """2010 as two tiles that overlap on columns 100–119 with equal pixels: the left tile
    (columns 0–119) is forest 21 on columns 0–99 and grass 31 on 100–119; the right tile
    (columns 100–199) is grass 31 throughout."""
    left = np.full((100, 120), 21, np.uint8)
    left[:, 100:] = 31
    _tif(data / "w_0.tif", left)
    _tif(data / "w_1.tif", np.full((100, 100), 31, np.uint8), col0=100)
    return ["data/w_0.tif", "data/w_1.tif"]


def _layers(gpkg: Path) -> dict:
    return {
        name: pyogrio.read_dataframe(gpkg, layer=name, read_geometry=False)
        for name in ("class_areas", "transitions", "county_vouchers")
    }


def test_tiles_are_joined_and_years_put_on_the_union_extent(tmp_path):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    tiles = _tiles_2010(data)
    # 2018: one file covering columns 0–149 only, all 22 (shrub); B's columns 150–199 have no
    # 2018 data once both years are on the union extent (columns 0–199)
    _tif(data / "lu_2018.tif", np.full((100, 150), 22, np.uint8))
    catalog, config = _case(tmp_path, {2010: tiles, 2018: "data/lu_2018.tif"})
    result = run_pipeline(catalog, config, tmp_path / "out", SERIAL, resume=False)
    got = _layers(result.gpkg)
    areas = {
        (r.county_id, r.year, r.class_code): r.area_ha for r in got["class_areas"].itertuples()
    }
    # 1 px = 100 m × 100 m = 1 ha. A: 100 × 100 px of 21 (2010) and of 22 (2018) = 10,000 ha;
    # B 2010: columns 100–199 of 31 = 10,000 ha — the 20 overlapping columns count once, not
    # 12,000 ha; B 2018: columns 100–149 of 22 = 50 × 100 = 5,000 ha
    assert areas == {
        ("110101", 2010, 21): 10_000.0,
        ("110101", 2018, 22): 10_000.0,
        ("130102", 2010, 31): 10_000.0,
        ("130102", 2018, 22): 5_000.0,
    }
    trans = {(r.county_id, r.from_code, r.to_code): r.area_ha
             for r in got["transitions"].itertuples()}  # fmt: skip
    # B: 31 → 22 on columns 100–149 (5,000 ha), 31 → no data (code 0) on 150–199 (5,000 ha)
    assert trans[("110101", 21, 22)] == 10_000.0
    assert trans[("130102", 31, 22)] == 5_000.0
    assert trans[("130102", 31, 0)] == 5_000.0
    notes = result.inputs.notes
    assert any("2 raster files joined on one pixel lattice" in n for n in notes)
    assert any("landuse 2018" in n and "union of both years' extents" in n for n in notes)
    # the VRTs are in a private temporary folder, never beside the user's files
    assert sorted(p.name for p in data.iterdir() if p.suffix == ".vrt") == []


def test_a_glob_of_tiles_equals_the_listed_tiles(tmp_path):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    _tiles_2010(data)
    _tif(data / "lu_2018.tif", np.full((100, 200), 22, np.uint8))
    catalog, config = _case(tmp_path, {2010: "data/w_*.tif", 2018: "data/lu_2018.tif"})
    got = _layers(run_pipeline(catalog, config, tmp_path / "out", SERIAL, resume=False).gpkg)
    a = got["class_areas"].set_index(["county_id", "year", "class_code"])["area_ha"]
    # as above, with 2018 covering both counties: B 2018 = 10,000 ha of 22
    assert a.to_dict() == {
        ("110101", 2010, 21): 10_000.0,
        ("110101", 2018, 22): 10_000.0,
        ("130102", 2010, 31): 10_000.0,
        ("130102", 2018, 22): 10_000.0,
    }


def test_a_glob_matching_nothing_is_named(tmp_path):
    catalog, _ = _case(tmp_path, {2010: "data/nothing_*.tif", 2018: "data/x.tif"})
    with pytest.raises(InputError, match=r"glob 'data/nothing_\*\.tif' matches no file"):
        load_catalog(catalog)


def _run_error(tmp_path, capsys, tiles: list[str]) -> str:
    _tif(tmp_path / "data" / "lu_2018.tif", np.full((100, 200), 22, np.uint8))
    catalog, config = _case(tmp_path, {2010: tiles, 2018: "data/lu_2018.tif"})
    code = main(["run", "--catalog", str(catalog), "--config", str(config), "--out",
                 str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert not (tmp_path / "out" / "eco_vouchers.gpkg").exists()
    return capsys.readouterr().err


def test_overlapping_tiles_that_disagree_are_refused(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    tiles = _tiles_2010(data)
    # the right tile says 32 on its first 5 columns (grid columns 100–104), where the left one
    # says 31: 5 × 100 = 500 of the 20 × 100 overlapping pixels differ
    right = np.full((100, 100), 31, np.uint8)
    right[:, :5] = 32
    _tif(data / "w_1.tif", right, col0=100)
    err = _run_error(tmp_path, capsys, tiles)
    assert "w_0.tif and w_1.tif overlap on 100 × 20 px" in err
    # the window: x from X0 + 100 × 100 m to X0 + 120 × 100 m
    assert f"x {X0 + 10_000:.10g} to {X0 + 12_000:.10g}" in err
    assert "500 of those pixels differ" in err


def test_tiles_in_different_crs_are_refused_grouped(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    tiles = _tiles_2010(data)
    _tif(data / "w_2.tif", np.full((10, 10), 31, np.uint8), crs="EPSG:32650")
    err = _run_error(tmp_path, capsys, [*tiles, "data/w_2.tif"])
    assert "3 raster files lie on 2 different grids" in err
    assert "w_0.tif, w_1.tif" in err and "UTM zone 50N" in err and "]: w_2.tif" in err
    assert "gdalwarp" in err


def test_tiles_off_the_lattice_are_refused(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    tiles = _tiles_2010(data)
    # a third tile half a pixel (50 m) east of the lattice
    _tif(data / "w_2.tif", np.full((10, 10), 31, np.uint8), col0=200, shift=50.0)
    err = _run_error(tmp_path, capsys, [*tiles, "data/w_2.tif"])
    assert "lie on 2 different grids" in err and "]: w_2.tif" in err


def test_tiles_of_different_types_are_refused(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    tiles = _tiles_2010(data)
    _tif(data / "w_1.tif", np.full((100, 100), 31, np.uint16), col0=100)
    err = _run_error(tmp_path, capsys, tiles)
    assert "differ in pixel type or nodata value" in err
    assert "uint8 nodata 0: w_0.tif" in err and "uint16 nodata 0: w_1.tif" in err


def test_validate_reads_every_tile_against_the_legend(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    tiles = _tiles_2010(data)
    # a stray 99 (no RESDC code) in a third tile that lies outside both counties (rows 100–109)
    bad = np.full((10, 10), 31, np.uint8)
    bad[0, 0] = 99
    _tif(data / "w_2.tif", bad, row0=100)
    _tif(data / "lu_2018.tif", np.full((100, 200), 22, np.uint8))
    catalog, config = _case(tmp_path, {2010: [*tiles, "data/w_2.tif"], 2018: "data/lu_2018.tif"})
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "w_2.tif" in err and "99 (1 px)" in err


def test_cells_in_no_file_are_no_data_even_where_0_is_a_class(tmp_path):
    from pipeline.ingest.mosaic import one_grid_per_year
    from pipeline.settings.legends import load_legend

    # MODIS tiles with no nodata value: 0 is water there, so the gap between the tiles (columns
    # 10–19) must be filled with the legend's nodata code 255, not 0
    a = _tif(tmp_path / "m_0.tif", np.full((10, 10), 0, np.uint8), nodata=None)
    b = _tif(tmp_path / "m_1.tif", np.full((10, 10), 1, np.uint8), col0=20, nodata=None)
    modis = load_legend("modis_igbp")
    got = one_grid_per_year({2020: (a, b)}, {}, {2020: modis}, {2020: "landuse 2020"})[2020]
    with rasterio.open(got.path) as src:
        assert src.nodata == 255 and src.width == 30
        px = src.read(1)
    # water (0) kept on columns 0–9, fill 255 on 10–19, forest (1) on 20–29
    assert (px[:, :10] == 0).all() and (px[:, 10:20] == 255).all() and (px[:, 20:] == 1).all()
    # a legend with class 0 and no nodata code: the gap cannot be marked, the run asks for one
    legend = tmp_path / "mine.yaml"
    legend.write_text(
        "name: mine\nclasses:\n  0: {name: water, group: water}\n  1: {name: forest, group: forest}\n",
        "utf-8",
    )
    with pytest.raises(InputError, match=r"carry no nodata value.*gdal_edit\.py -a_nodata"):
        one_grid_per_year({2020: (a, b)}, {}, {2020: load_legend(legend)}, {2020: "landuse 2020"})
    # tiles that leave no gap need no fill value, whatever the legend
    c = _tif(tmp_path / "m_2.tif", np.full((10, 10), 1, np.uint8), col0=10, nodata=None)
    got = one_grid_per_year({2020: (a, c)}, {}, {2020: load_legend(legend)}, {2020: "x"})[2020]
    with rasterio.open(got.path) as src:
        assert src.nodata is None and (src.read(1)[:, 10:] == 1).all()
