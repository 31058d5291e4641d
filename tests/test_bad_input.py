"""Bad input: every problem named, exit 2, no traceback, no output file; repairs that are safe."""

from __future__ import annotations

import pyogrio
import pytest
import yaml

from conftest import LANDUSE, box_km, write_case
from pipeline.cli import main
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine


def _run_cli(catalog, config, out, capsys) -> tuple[int, str]:
    code = main(["run", "--catalog", str(catalog), "--config", str(config), "--out", str(out)])
    return code, capsys.readouterr().err


def _run_with_extra_patch(tmp_path, capsys, year: int, patch: tuple) -> tuple[int, str]:
    lu = {y: list(p) for y, p in LANDUSE.items()}
    lu[year] = [*lu[year], patch]
    catalog, config = write_case(tmp_path, landuse=lu)
    return _run_cli(catalog, config, tmp_path / "out", capsys)


def test_overlapping_polygons_stop_the_run_with_counties_and_hectares(tmp_path, capsys):
    # a 2 km × 2 km forest patch drawn again over A's forest: 400 ha counted twice
    code, err = _run_with_extra_patch(tmp_path, capsys, 2018, (21, (0, 0, 2, 2)))
    assert code == 2
    assert "lu_2018.shp" in err and "110101 (400.00 ha)" in err and "landuse_overlaps" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "eco_vouchers.gpkg").exists()


def test_overlap_across_two_counties_is_split_between_them(tmp_path, capsys):
    # grass patch [9,11]×[0,1] km over A's forest (1 km × 1 km = 100 ha) and B's grass (100 ha)
    code, err = _run_with_extra_patch(tmp_path, capsys, 2010, (31, (9, 0, 11, 1)))
    assert code == 2
    assert "110101 (100.00 ha)" in err and "130102 (100.00 ha)" in err


def test_overlap_policy_first_keeps_the_earlier_polygon(tmp_path):
    lu = {y: list(p) for y, p in LANDUSE.items()}
    lu[2018] = [*lu[2018], (51, (0, 0, 2, 2))]  # a later urban patch over A's forest
    catalog, config = write_case(tmp_path, landuse=lu, config_extra={"landuse_overlaps": "first"})
    gpkg = run_pipeline(catalog, config, tmp_path / "o", Engine(workers=1, progress=False)).gpkg
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers").set_index("county_id")
    # the forest (earlier) keeps the 400 ha: M_t(A) stays 2500, as without the extra patch
    assert cv.loc["110101", "sf_target_ha"] == pytest.approx(2500, rel=1e-9)
    assert cv.loc["110101", "coverage_target"] == pytest.approx(1.0, rel=1e-9)


def test_self_intersecting_polygon_is_repaired_and_the_run_completes(tmp_path, capsys):
    import geopandas as gpd
    import shapely

    from conftest import RESDC_PRJ, X0, Y0
    from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS

    catalog, config = write_case(tmp_path)
    # replace A's 2010 forest [0,10]×[0,5] km by a bow-tie over the same box: its two triangles
    # (0,0)(5,2.5)(0,5) and (10,5)(10,0)(5,2.5) each have 5 km × 5 km / 2 = 12.5 km² = 1250 ha
    km = 1000.0
    bowtie = shapely.Polygon(
        [(X0, Y0), (X0 + 10 * km, Y0 + 5 * km), (X0 + 10 * km, Y0), (X0, Y0 + 5 * km)]
    )
    assert not bowtie.is_valid
    geoms = [bowtie, box_km(0, 5, 25, 10), box_km(10, 0, 20, 5)]
    gdf = gpd.GeoDataFrame({"gridcode": [21, 12, 31]}, geometry=geoms, crs=DEFAULT_EQUAL_AREA_CRS)
    path = tmp_path / "data" / "lu_2010.shp"
    pyogrio.write_dataframe(gdf, path)
    path.with_suffix(".prj").write_text(RESDC_PRJ)
    out = tmp_path / "out"
    code, err = _run_cli(catalog, config, out, capsys)
    assert code == 0, err
    cv = pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="county_vouchers")
    a = cv.set_index("county_id").loc["110101"]
    assert a["sf_base_ha"] == pytest.approx(2500, rel=1e-9)  # 2 × 1250 ha of forest, k = 1
    # A's base-year coverage: forest 2500 + cropland 5000 of 10,000 ha = 0.75
    assert a["coverage_base"] == pytest.approx(0.75, rel=1e-9)
    assert "repaired 1 invalid geometries" in err
    s = pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="summary")
    assert s["text"].str.contains("repaired 1 invalid", na=False).any()


def test_every_problem_of_every_dataset_is_listed_at_once(tmp_path, capsys):
    lu = {y: list(p) for y, p in LANDUSE.items()}
    lu[2010] = [*lu[2010], (99, (30, 0, 31, 1))]
    socio = [
        {"code": "110101", "year": 2018, "gdp": "n/a", "pop": 10},
        {"code": "130102", "year": 2018, "gdp": 30000, "pop": -1},
    ]
    catalog, config = write_case(tmp_path, landuse=lu, socio=socio)
    code = main(["validate", "--catalog", str(catalog), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "99 (1 features)" in err  # land use
    assert "non-numeric or empty values for counties 110101" in err  # statistics
    assert "zero or negative values for counties 130102" in err
    assert "3 problems" in err


def test_duplicate_county_ids_and_missing_statistics(tmp_path, capsys):
    counties = [
        {"adcode": "110101", "name": "甲县", "province": "北京市", "city": "北京市", "box": (0, 0, 10, 10)},
        {"adcode": "110101", "name": "乙县", "province": "河北省", "city": "石家庄市", "box": (10, 0, 20, 10)},
    ]  # fmt: skip
    catalog, config = write_case(tmp_path, counties=counties)
    code = main(["validate", "--catalog", str(catalog), "--config", str(config)])
    assert code == 2
    assert "duplicate county ids 110101" in capsys.readouterr().err


def test_counties_without_statistics_are_named(tmp_path, capsys):
    socio = [{"code": "110101", "year": 2018, "gdp": 1, "pop": 1}]
    catalog, config = write_case(tmp_path, socio=socio)
    code = main(["validate", "--catalog", str(catalog), "--config", str(config)])
    assert code == 2
    assert (
        "no row for year 2018 for 1 counties of the study area: 130102" in capsys.readouterr().err
    )


def test_failed_run_keeps_the_previous_good_output(tmp_path, capsys):
    catalog, config = write_case(tmp_path)
    out = tmp_path / "out"
    assert _run_cli(catalog, config, out, capsys)[0] == 0
    before = (out / "eco_vouchers.gpkg").read_bytes()
    cfg = yaml.safe_load(config.read_text("utf-8"))
    cfg["national"] = {2010: cfg["national"][2018]}  # target-year national values now missing
    config.write_text(yaml.safe_dump(cfg), "utf-8")
    code, err = _run_cli(catalog, config, out, capsys)
    assert code == 2 and "national reference values for the target year 2018" in err
    assert (out / "eco_vouchers.gpkg").read_bytes() == before
    assert not list(out.glob(".partial-*"))  # no temporary left behind


def test_multi_layer_file_without_layer(tmp_path, capsys):
    catalog, config = write_case(tmp_path)
    gpkg = tmp_path / "data" / "counties.gpkg"
    extra = pyogrio.read_dataframe(gpkg, layer="counties")
    pyogrio.write_dataframe(extra, gpkg, layer="other")
    code = main(["validate", "--catalog", str(catalog), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "holds 2 layers (counties, other)" in err and "layer:" in err


def test_truncated_shapefile(tmp_path, capsys):
    catalog, config = write_case(tmp_path)
    shp = tmp_path / "data" / "lu_2018.shp"
    shp.write_bytes(shp.read_bytes()[:150])
    code = main(["validate", "--catalog", str(catalog), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "lu_2018.shp" in err and "Traceback" not in err


def test_statistics_rows_for_unknown_counties_are_a_warning(tmp_path, capsys):
    from conftest import SOCIO

    socio = [*SOCIO, {"code": "999999", "year": 2018, "gdp": 1, "pop": 1}]
    catalog, config = write_case(tmp_path, socio=socio)
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 0
    assert "rows for 1 counties that are not in the counties file ignored: 999999" in err


def test_truncated_geotiff_is_named_by_validate_and_run(tmp_path, capsys):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from conftest import X0, Y0
    from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS

    catalog, config = write_case(tmp_path)
    for year in (2010, 2018):  # 200 × 100 pixels of 100 m: the two counties, all forest
        profile = dict(driver="GTiff", width=200, height=100, count=1, dtype="uint8", nodata=0,
                       crs=DEFAULT_EQUAL_AREA_CRS, transform=from_origin(X0, Y0 + 10_000, 100, 100))  # fmt: skip
        with rasterio.open(tmp_path / "data" / f"lu_{year}.tif", "w", **profile) as dst:
            dst.write(np.full((100, 200), 21, np.uint8), 1)
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    cat["datasets"]["landuse"] = {
        y: {"path": f"data/lu_{y}.tif", "format": "raster"} for y in (2010, 2018)
    }
    catalog.write_text(yaml.safe_dump(cat), "utf-8")
    tif = tmp_path / "data" / "lu_2018.tif"
    tif.write_bytes(tif.read_bytes()[: tif.stat().st_size // 3])
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "lu_2018.tif" in err and "truncated" in err
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 2 and "lu_2018.tif" in err and "truncated" in err
    assert not (tmp_path / "out" / "eco_vouchers.gpkg").exists()


def test_overlap_hidden_by_an_equal_gap_is_still_found(tmp_path, capsys):
    import geopandas as gpd
    import shapely

    from conftest import RESDC_PRJ
    from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS

    catalog, config = write_case(tmp_path)
    # A's forest [0,10]×[0,5] km with a 2 km × 2 km hole at [2,4]×[1,3]; the grass island that
    # should fill the hole is shifted 1 km east to [3,5]×[1,3]: it overlaps the forest on
    # [4,5]×[1,3] = 200 ha and leaves [2,3]×[1,3] = 200 ha uncovered, so A's class areas still
    # sum to its area — the overlap must be found all the same.
    forest = shapely.difference(box_km(0, 0, 10, 5), box_km(2, 1, 4, 3))
    geoms = [forest, box_km(3, 1, 5, 3), box_km(0, 5, 25, 10), box_km(10, 0, 20, 5)]
    gdf = gpd.GeoDataFrame(
        {"gridcode": [21, 31, 12, 31]}, geometry=geoms, crs=DEFAULT_EQUAL_AREA_CRS
    )
    path = tmp_path / "data" / "lu_2010.shp"
    pyogrio.write_dataframe(gdf, path)
    path.with_suffix(".prj").write_text(RESDC_PRJ)
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 2
    assert "110101 (200.00 ha)" in err and "#0 & #1" in err


def test_web_mercator_is_refused_as_equal_area_crs(tmp_path, capsys):
    catalog, config = write_case(tmp_path, config_extra={"equal_area_crs": "EPSG:3857"})
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 2 and "does not preserve areas" in err


def test_land_use_far_from_the_counties_is_an_input_error(tmp_path, capsys):
    lu = {y: list(p) for y, p in LANDUSE.items()}
    lu[2010] = [(21, (500, 500, 510, 510))]  # 500 km away from both counties
    catalog, config = write_case(tmp_path, landuse=lu)
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 2 and "lu_2010.shp" in err and "covers none of the 2 counties" in err


def test_degenerate_county_is_named(tmp_path, capsys):
    from conftest import COUNTIES

    flat = {"adcode": "130103", "name": "丙县", "province": "河北省", "city": "石家庄市",
            "box": (30, 0, 30, 10)}  # fmt: skip
    socio = [{"code": c, "year": 2018, "gdp": 1, "pop": 1} for c in ("110101", "130102", "130103")]
    catalog, config = write_case(tmp_path, counties=[*COUNTIES, flat], socio=socio)
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 2 and "130103" in err


def test_out_that_is_a_file_is_an_input_error(tmp_path, capsys):
    catalog, config = write_case(tmp_path)
    (tmp_path / "out").write_text("not a folder")
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 2 and "is a file, not a folder" in err


def test_statistics_codes_written_as_floats_and_bad_cells_elsewhere(tmp_path, capsys):
    socio = [
        {"code": "110101.0", "year": 2018, "gdp": 100000, "pop": 10},  # went through a float
        {"code": "130102", "year": 2018, "gdp": 30000, "pop": 1},
        {"code": "500101", "year": 2018, "gdp": "n/a", "pop": 5},  # not ours: not checked
    ]
    catalog, config = write_case(tmp_path, socio=socio)
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 0, err


def test_empty_county_id_list_is_refused(tmp_path, capsys):
    catalog, config = write_case(tmp_path, config_extra={"study_area": {"county_ids": []}})
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 2 and "study_area.county_ids" in err


def test_overlapping_counties_are_a_warning_with_hectares(tmp_path, capsys):
    from conftest import COUNTIES

    # B drawn 1 km too far west: [9,20]×[0,10] km overlaps A on [9,10]×[0,10] = 1,000 ha
    wide = [COUNTIES[0], {**COUNTIES[1], "box": (9, 0, 20, 10)}]
    catalog, config = write_case(tmp_path, counties=wide)
    code, err = _run_cli(catalog, config, tmp_path / "out", capsys)
    assert code == 0, err
    assert "1 pairs of counties overlap (110101 & 130102 (1,000.0000 ha))" in err


def test_command_exits_with_its_code_and_message(tmp_path):
    # `python -m pipeline` leaves through os._exit (no interpreter teardown): the message must
    # still reach stderr and the code the shell
    import subprocess
    import sys
    from pathlib import Path

    missing = tmp_path / "no_such_catalog.yaml"
    cmd = [sys.executable, "-m", "pipeline", "validate", "--catalog", str(missing), "--config",
           str(missing)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 2
    assert f"catalog {missing}: file not found" in proc.stderr
