"""Tiled runs (--tiles, --memory-limit): the land use streamed to disk and held a tile of counties
at a time gives the same numbers as a run holding it whole, bit for bit."""

from __future__ import annotations

import argparse

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from pipeline.cli import _size, main
from pipeline.errors import InputError
from pipeline.geom.boxes import box_pairs
from pipeline.ingest.inputs import ingest
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine
from pipeline.settings.catalog import load_catalog
from pipeline.settings.config import load_config
from pipeline.zonal.tiles import (
    BASE_BYTES,
    BYTES_PER_POLYGON,
    _balanced_runs,
    _feature_count,
    _meetings,
    _members,
    _tiles_for,
    tile_plan,
)
from tests.conftest import box_km, write_case

# Four 10 km × 10 km counties in a row: A [0,10], B [10,20], C [20,30], D [30,40] km (x), y [0,10].
COUNTIES = [
    {"adcode": code, "name": name, "province": "河北省", "city": "石家庄市", "box": (x, 0, x + 10, 10)}
    for code, name, x in (
        ("130101", "甲", 0), ("130102", "乙", 10), ("130103", "丙", 20), ("130104", "丁", 30),
    )
]  # fmt: skip
LANDUSE = {
    2010: [
        (12, (0, 5, 40, 10)),  # cropland across all four counties: 5,000 ha in each
        (21, (0, 0, 15, 5)),  # forest: A 5,000 ha, B 2,500 ha
        (31, (15, 0, 25, 5)),  # grass across B|C: 2,500 ha each
        (21, (25, 0, 40, 5)),  # forest: C 2,500 ha, D 5,000 ha
    ],
    2018: [
        (12, (0, 5, 40, 10)),  # unchanged
        (21, (0, 0, 15, 5)),  # unchanged
        (51, (15, 0, 22, 5)),  # urban: B 2,500 ha, C 1,000 ha (grass lost)
        (31, (22, 0, 25, 5)),  # grass: C 1,500 ha
        (21, (25, 0, 40, 5)),  # unchanged
    ],
}
SOCIO = [
    {"code": c["adcode"], "year": 2018, "gdp": 50000, "pop": 5} for c in COUNTIES
]  # 5e8 yuan, 50,000 persons each


@pytest.fixture
def four(tmp_path):
    return write_case(tmp_path / "four", counties=COUNTIES, landuse=LANDUSE, socio=SOCIO)


def _tables(gpkg) -> dict[str, pd.DataFrame]:
    return {
        layer: pyogrio.read_dataframe(gpkg, layer=layer, read_geometry=False)
        for layer in ("class_areas", "transitions", "county_vouchers", "summary")
    }


def test_tiled_run_equals_whole_run_bit_for_bit(four, tmp_path):
    catalog, config = four
    engine = Engine(workers=1, progress=False)
    whole = run_pipeline(catalog, config, tmp_path / "whole", engine, partition_size=1)
    tiled = run_pipeline(catalog, config, tmp_path / "tiled", engine, partition_size=1, tiles=2)
    a, b = _tables(whole.gpkg), _tables(tiled.gpkg)
    for layer in ("class_areas", "transitions", "county_vouchers"):
        pd.testing.assert_frame_equal(a[layer], b[layer], check_exact=True)
    # and the numbers are right: C (130103) 2018 = cropland 5,000 + urban 1,000 + grass 1,500
    # + forest 2,500 ha; its transfer grass → urban is 1,000 ha
    ca = b["class_areas"].set_index(["county_id", "year", "class_code"])["area_ha"]
    for code, ha in {12: 5000, 51: 1000, 31: 1500, 21: 2500}.items():
        assert ca[("130103", 2018, code)] == pytest.approx(ha, rel=1e-12)
    tr = b["transitions"].set_index(["county_id", "from_code", "to_code"])["area_ha"]
    assert tr[("130103", 31, 51)] == pytest.approx(1000, rel=1e-12)
    assert tr[("130102", 31, 51)] == pytest.approx(2500, rel=1e-12)
    # nothing of the spill is left behind
    assert not list((tmp_path / "tiled").glob(".ecovoucher-spill-*"))


def test_a_polygon_on_a_tile_edge_is_in_both_tiles(four):
    catalog, config = four
    (catalog.parent / "spill").mkdir()
    inputs = ingest(load_catalog(catalog), load_config(config)[0], catalog.parent / "spill")
    spill = inputs.landuse.spills[2018]
    tile_of = np.array([0, 0, 1, 1])  # A, B | C, D (counties are sorted by id)
    members = _members(_meetings(spill, inputs.counties), tile_of, 2)
    # 2018 polygons (x in km): 0 cropland [0,40] meets all; 1 forest [0,15] meets A, B;
    # 2 urban [15,22] meets B and C: both tiles; 3 grass [22,25] C; 4 forest [25,40] C, D
    assert members[0].tolist() == [0, 1, 2]
    assert members[1].tolist() == [0, 2, 3, 4]


def test_box_pairs_by_hand_and_as_an_strtree_finds_them():
    targets = np.array([[0.0, 0, 10, 10], [10, 0, 20, 10]])  # two counties side by side
    boxes = np.array([
        [2.0, 2, 3, 3],  # inside the first
        [9.0, 2, 11, 3],  # across the shared edge: both
        [20.0, 5, 25, 6],  # touching the second's east edge at x = 20: it counts
        [30.0, 30, 31, 31],  # outside both (and outside the grid)
    ])  # fmt: skip
    i, j = box_pairs(boxes, targets)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 0), (1, 0), (1, 1), (2, 1)]
    rng = np.random.default_rng(7)
    lo = rng.random((5000, 2)) * 100
    boxes = np.c_[lo, lo + rng.random((5000, 2)) * 3]
    lo = rng.random((200, 2)) * 100
    targets = np.c_[lo, lo + rng.random((200, 2)) * 15]
    boxes[:40, 2] = targets[:40, 0]  # boxes ending exactly where a target begins
    boxes[:40, 0] = np.minimum(boxes[:40, 0], boxes[:40, 2])
    q = shapely.STRtree(shapely.box(*targets.T)).query(shapely.box(*boxes.T))
    order = np.lexsort((q[1], q[0]))
    i, j = box_pairs(boxes, targets)
    assert np.array_equal(i, q[0][order]) and np.array_equal(j, q[1][order])


def test_tiles_are_balanced_by_the_polygons_they_meet():
    # four partitions of one county each; county 0 meets 30 polygons, the others 1 each
    groups = [np.array([k]) for k in range(4)]
    county = np.array([0] * 30 + [1, 2, 3])
    meetings = {2010: (np.arange(33), county)}
    # loads (+1 each, so none is 0) 31, 2, 2, 2 → cumulative 31, 33, 35, 37; half of 37 is 18.5,
    # reached within the first partition: tiles [0] and [1, 2, 3] (equal counts: [0, 1], [2, 3])
    runs = _balanced_runs(groups, meetings, 4, 2)
    assert [r.tolist() for r in runs] == [[0], [1, 2, 3]]
    assert [r.tolist() for r in _balanced_runs(groups, meetings, 4, 9)] == [[0], [1], [2], [3]]


def test_tiled_overlaps_are_reported_with_the_county_and_nothing_is_written(tmp_path):
    landuse = {y: list(p) for y, p in LANDUSE.items()}
    # a 2 km × 2 km reservoir on top of D's forest: 4 km² = 400 ha counted twice
    landuse[2010].append((43, (32, 1, 34, 3)))
    catalog, config = write_case(tmp_path / "c", counties=COUNTIES, landuse=landuse, socio=SOCIO)
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        run_pipeline(catalog, config, out, Engine(workers=1, progress=False), tiles=2)
    text = str(err.value)
    assert "130104 (400.00 ha)" in text and "lu_2010.shp" in text
    assert "#3 & #4" in text  # the file's row numbers, whichever tile found them
    assert not (out / "eco_vouchers.gpkg").exists()
    assert not list(out.glob(".ecovoucher-spill-*"))


def test_spilled_land_use_is_the_land_use_read_whole(tmp_path):
    # an empty feature is dropped and noted the same way in both
    catalog, config = write_case(tmp_path / "c", counties=COUNTIES, landuse=LANDUSE, socio=SOCIO)
    path = catalog.parent / "data" / "lu_2018.shp"
    gdf = pyogrio.read_dataframe(path, encoding="gbk")
    empty = gpd.GeoDataFrame(
        {"gridcode": [21], "name": ["x"]}, geometry=[shapely.Polygon()], crs=gdf.crs
    )
    pyogrio.write_dataframe(pd.concat([empty, gdf], ignore_index=True), path, encoding="GBK")
    cat, cfg = load_catalog(catalog), load_config(config)[0]
    whole = ingest(cat, cfg)
    (tmp_path / "spill").mkdir()
    spilled = ingest(cat, cfg, tmp_path / "spill")
    assert spilled.notes == whole.notes
    assert any("dropped 1 empty geometries" in n for n in whole.notes)
    for year in (2010, 2018):
        spill = spilled.landuse.spills[year]
        back, rings = spill.read(np.arange(spill.n))
        lu = whole.landuse.frames[year]
        assert back["row"].tolist() == lu["row"].tolist()  # 2018: rows 1–5, row 0 was empty
        assert back["class_code"].tolist() == lu["class_code"].tolist()
        assert shapely.to_wkb(back.geometry.values).tolist() == (
            shapely.to_wkb(lu.geometry.values).tolist()
        )
        assert rings is not None and len(rings.hashes()) == len(lu)
    assert spilled.landuse.spills[2018].read(np.array([1, 3]))[0]["row"].tolist() == [2, 4]


def test_memory_limit_picks_the_tile_count(four):
    # 4 + 5 = 9 polygons at 2,000 bytes, plus 10 % for tile edges: 1.1 × 9 × 2000 = 19,800 bytes
    assert BYTES_PER_POLYGON == 2000
    assert _tiles_for(9, BASE_BYTES + 10_000) == 2  # ceil(19,800 / 10,000)
    assert _tiles_for(9, BASE_BYTES + 19_800) == 1
    with pytest.raises(InputError, match="memory-limit"):
        _tiles_for(9, BASE_BYTES // 2)
    catalog, config = four
    cat, cfg = load_catalog(catalog), load_config(config)[0]
    assert tile_plan(cat, cfg, memory_limit=BASE_BYTES + 6_000).n == 4  # ceil(19,800 / 6,000)
    assert tile_plan(cat, cfg, tiles=3, memory_limit=BASE_BYTES + 6_000).n == 3
    assert tile_plan(cat, cfg).n == 1  # fits in this machine's memory
    data = catalog.parent / "data"
    assert _feature_count(data / "lu_2018.shp", None) == 5  # from the .shx: (140 − 100) / 8
    assert _feature_count(data / "counties.gpkg", "counties") == 4  # from GDAL


def test_a_machine_too_small_for_the_run_tiles_it_by_default(four, monkeypatch):
    import pipeline.zonal.tiles as tiles

    catalog, config = four
    cat, cfg = load_catalog(catalog), load_config(config)[0]
    # 9 polygons need 19,800 bytes beyond the base; a "machine" leaving 6,000 for them: 4 tiles
    monkeypatch.setattr(tiles, "_machine_memory", lambda: BASE_BYTES + 6_000)
    assert tile_plan(cat, cfg).n == 1  # the floor: at least 256 MiB for the land use is assumed
    monkeypatch.setattr(tiles, "BYTES_PER_POLYGON", 2**26)  # 64 MiB a polygon, to see it tile
    # 1.1 × 9 × 64 MiB = 633.6 MiB over a budget of 256 MiB: ceil(2.475) = 3 tiles
    assert tile_plan(cat, cfg).n == 3


@pytest.mark.parametrize(
    "text, size",
    [("4G", 4 * 2**30), ("4GiB", 4 * 2**30), ("1500M", 1500 * 2**20), ("2.5g", int(2.5 * 2**30)),
     ("512", 512 * 2**20), ("64kb", 64 * 2**10), ("65536B", 65536), (".5G", 2**29)],
)  # fmt: skip
def test_memory_sizes(text, size):
    assert _size(text) == size


def test_bad_memory_size_is_a_usage_error(four, tmp_path, capsys):
    catalog, config = four
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--catalog", str(catalog), "--config", str(config), "--out",
              str(tmp_path / "o"), "--memory-limit", "4X"])  # fmt: skip
    assert exit_.value.code == 2
    assert "not a size" in capsys.readouterr().err
    for bad in ("lots", "0", "0G", "1,5G"):
        with pytest.raises(argparse.ArgumentTypeError):
            _size(bad)


def test_cli_validate_and_run_tiled(four, tmp_path, capsys):
    catalog, config = four
    assert (
        main(["validate", "--catalog", str(catalog), "--config", str(config), "--tiles", "2"]) == 0
    )
    assert "2018: 5 polygons" in capsys.readouterr().out
    args = ["run", "--catalog", str(catalog), "--config", str(config), "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "a"), "--memory-limit", "4G"]) == 0  # fits whole
    assert main([*args, "--out", str(tmp_path / "b"), "--tiles", "3"]) == 0
    a, b = (_tables(tmp_path / o / "eco_vouchers.gpkg") for o in "ab")
    pd.testing.assert_frame_equal(a["county_vouchers"], b["county_vouchers"], check_exact=True)
    # B (130102): its 2,500 ha of grass all became urban (2010 grass [15,20] → 2018 urban)
    assert b["transitions"].query("county_id == '130102' and from_code == 31")["area_ha"].sum() == (
        pytest.approx(2500, rel=1e-12)
    )


def test_tiled_overlaps_resolved_first_agree_with_the_whole_run(tmp_path):
    landuse = {y: list(p) for y, p in LANDUSE.items()}
    landuse[2010].append((43, (32, 1, 34, 3)))  # 400 ha over D's forest, which keeps it
    catalog, config = write_case(
        tmp_path / "c", counties=COUNTIES, landuse=landuse, socio=SOCIO,
        config_extra={"landuse_overlaps": "first"},
    )  # fmt: skip
    engine = Engine(workers=1, progress=False)
    whole = run_pipeline(catalog, config, tmp_path / "a", engine, partition_size=1)
    tiled = run_pipeline(catalog, config, tmp_path / "b", engine, partition_size=1, tiles=2)
    a, b = _tables(whole.gpkg)["class_areas"], _tables(tiled.gpkg)["class_areas"]
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    # D 2010: forest 5,000 ha (the earlier polygon keeps the shared 400 ha), no reservoir left
    d = b.query("county_id == '130104' and year == 2010").set_index("class_code")["area_ha"]
    assert d[21] == pytest.approx(5000, rel=1e-12) and 43 not in d.index


def test_an_overlap_across_two_tiles_is_reported_as_an_untiled_run_reports_it(tmp_path):
    landuse = {y: list(p) for y, p in LANDUSE.items()}
    # a reservoir over the B|C border, on top of the grass [15,25]: 8 km × 1 km = 800 ha twice,
    # 400 ha in B (tile 1) and 400 ha in C (tile 2)
    landuse[2010].append((43, (16, 1, 24, 2)))
    catalog, config = write_case(tmp_path / "c", counties=COUNTIES, landuse=landuse, socio=SOCIO)
    messages = []
    for tiles in (None, 2):
        with pytest.raises(InputError) as err:
            run_pipeline(catalog, config, tmp_path / f"o{tiles}", Engine(workers=1, progress=False),
                         partition_size=1, tiles=tiles)  # fmt: skip
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "1 pairs of land-use polygons overlap, 800.00 ha in all" in messages[1]
    assert "130102 (400.00 ha), 130103 (400.00 ha)" in messages[1]


def test_a_polygon_that_repair_leaves_without_area_is_dropped_and_noted(tmp_path):
    landuse = {y: list(p) for y, p in LANDUSE.items()}
    catalog, config = write_case(tmp_path / "c", counties=COUNTIES, landuse=landuse, socio=SOCIO)
    path = catalog.parent / "data" / "lu_2010.shp"
    gdf = pyogrio.read_dataframe(path, encoding="gbk")
    x, y = box_km(1, 1, 2, 2).bounds[:2]
    flat = shapely.Polygon([(x, y), (x + 500, y), (x + 1000, y)])  # three points on a line
    extra = gpd.GeoDataFrame({"gridcode": [21], "name": ["x"]}, geometry=[flat], crs=gdf.crs)
    pyogrio.write_dataframe(pd.concat([gdf, extra], ignore_index=True), path, encoding="GBK")
    engine = Engine(workers=1, progress=False)
    whole = run_pipeline(catalog, config, tmp_path / "a", engine, partition_size=1)
    tiled = run_pipeline(catalog, config, tmp_path / "b", engine, partition_size=1, tiles=2)
    for result in (whole, tiled):
        assert any("repaired 1 invalid" in n and "1 of them had no area left and were dropped"
                   in n for n in result.inputs.notes)  # fmt: skip
    a, b = _tables(whole.gpkg), _tables(tiled.gpkg)
    pd.testing.assert_frame_equal(a["class_areas"], b["class_areas"], check_exact=True)


def test_features_that_are_not_polygons_are_counted_over_the_whole_file(tmp_path, monkeypatch):
    import pipeline.ingest.vector as vector_module

    catalog, config = write_case(tmp_path / "c", counties=COUNTIES, landuse=LANDUSE, socio=SOCIO)
    data = catalog.parent / "data"
    polys = pyogrio.read_dataframe(data / "lu_2010.shp", encoding="gbk")
    line = shapely.LineString([(0, 0), (1, 1)])

    def lines(n):
        return gpd.GeoDataFrame(
            {"gridcode": [21] * n, "name": ["l"] * n}, geometry=[line] * n, crs=polys.crs
        )

    # rows: polygon, line | polygon, line | line, polygon | polygon (batches of 2)
    parts = [polys.iloc[:1], lines(1), polys.iloc[1:2], lines(2), polys.iloc[2:]]
    mixed = pd.concat(parts, ignore_index=True)
    pyogrio.write_dataframe(mixed, data / "mixed.gpkg", geometry_type="Unknown")
    text = catalog.read_text("utf-8").replace("data/lu_2010.shp", "data/mixed.gpkg")
    catalog.write_text(text, "utf-8")
    monkeypatch.setattr(vector_module, "READ_BATCH", 2)  # the lines fall into several batches
    with pytest.raises(InputError, match="3 features are not polygons"):
        ingest(load_catalog(catalog), load_config(config)[0])


def test_a_smaller_study_area_skips_far_polygons_as_they_are_read(four, tmp_path):
    catalog, config = four
    engine = Engine(workers=1, progress=False)
    everything = run_pipeline(catalog, config, tmp_path / "all", engine)
    text = config.read_text("utf-8") + "study_area:\n  county_ids: ['130101']\n"
    config.write_text(text, "utf-8")
    for tiles in (None, 2):
        only_a = run_pipeline(catalog, config, tmp_path / f"a{tiles}", engine, tiles=tiles)
        # A is [0,10] km: of 2010's four polygons the grass [15,25] and the forest [25,40] miss
        # A's box; of 2018's five, the urban [15,22], the grass [22,25] and the forest [25,40]
        skipped = sorted(n.split(": ")[-1] for n in only_a.inputs.notes if "skipped" in n)
        assert skipped == [
            "skipped 2 polygons outside the study area (their bounding boxes meet no county of it)",
            "skipped 3 polygons outside the study area (their bounding boxes meet no county of it)",
        ]
        # and A's numbers are the same as in the run over all four counties, bit for bit
        a, b = _tables(everything.gpkg), _tables(only_a.gpkg)
        for layer in ("class_areas", "transitions"):
            mine = a[layer].query("county_id == '130101'").reset_index(drop=True)
            pd.testing.assert_frame_equal(mine, b[layer], check_exact=True)


def test_a_smaller_study_area_needs_fewer_tiles(four, tmp_path, caplog):
    import logging

    catalog, config = four
    config.write_text(
        config.read_text("utf-8") + "study_area:\n  county_ids: ['130101', '130102']\n"
    )
    limit = BASE_BYTES + 14_000
    # the files hold 4 + 5 = 9 polygons: ceil(1.1 × 9 × 2000 / 14,000) = ceil(1.41) = 2 tiles.
    # A and B ([0,20] km) keep 3 a year (2010: cropland, forest [0,15], grass [15,25]; 2018:
    # cropland, forest [0,15], urban [15,22]): ceil(1.1 × 6 × 2000 / 14,000) = ceil(0.94) = 1
    assert tile_plan(load_catalog(catalog), load_config(config)[0], memory_limit=limit).n == 2
    with caplog.at_level(logging.INFO, logger="pipeline"):
        run_pipeline(catalog, config, tmp_path / "o", Engine(workers=1, progress=False),
                     partition_size=1, memory_limit=limit)  # fmt: skip
    assert any(r.getMessage().startswith("tiles: 1 of 6 ") for r in caplog.records)
