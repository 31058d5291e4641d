"""Catalog, config, coefficients and ingest: what is read, how, and what is refused."""

from __future__ import annotations

import pytest
import yaml

from conftest import LANDUSE, write_case
from pipeline.errors import InputError
from pipeline.ingest.inputs import ingest
from pipeline.settings.catalog import load_catalog
from pipeline.settings.coefficients import load_coefficients
from pipeline.settings.config import DEFAULT_COEFFICIENTS, load_config

TABLE1_K = {21: 1.00, 22: 0.89, 23: 0.75, 24: 0.65, 31: 0.33, 32: 0.28, 33: 0.19, 41: 2.10}


def test_relative_paths_are_relative_to_the_catalog_file(case, monkeypatch, tmp_path):
    catalog_path, config_path = case
    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    catalog = load_catalog(catalog_path)
    assert catalog.datasets.counties.path == catalog_path.parent / "data" / "counties.gpkg"
    assert catalog.datasets.landuse[2010].path.is_file()
    config, _ = load_config(config_path)
    inputs = ingest(catalog, config)
    assert list(inputs.counties["county_id"]) == ["110101", "130102"]


def test_gbk_shapefile_without_cpg_is_read_as_gbk(tmp_path):
    catalog_path, config_path = write_case(tmp_path, counties_as_gbk_shapefile=True)
    assert not (tmp_path / "data" / "counties.cpg").exists()
    inputs = ingest(load_catalog(catalog_path), load_config(config_path)[0])
    assert list(inputs.counties["name"]) == ["甲县", "乙县"]
    assert list(inputs.counties["city"]) == ["北京市", "石家庄市"]
    assert any("counties.shp" in n and "read as GBK" in n for n in inputs.notes)
    # the land-use shapefiles are GBK without .cpg too; only their codes are read
    assert sorted(inputs.landuse.frames[2010]["class_code"]) == [12, 21, 31]


def test_declared_encoding_is_honoured(tmp_path):
    catalog_path, config_path = write_case(tmp_path, counties_as_gbk_shapefile=True)
    cat = yaml.safe_load(catalog_path.read_text("utf-8"))
    cat["datasets"]["counties"]["encoding"] = "utf-8"  # wrong: the file is GBK
    catalog_path.write_text(yaml.safe_dump(cat), "utf-8")
    with pytest.raises(InputError, match=r"counties\.shp.*does not decode as utf-8.*encoding"):
        ingest(load_catalog(catalog_path), load_config(config_path)[0])


def test_cropland_subcodes_roll_up(tmp_path):
    # 121 (旱地, flat) and 122 (旱地, hilly) halves of the cropland strip roll up to 12
    lu = {y: list(p) for y, p in LANDUSE.items()}
    lu[2010] = [
        (21, (0, 0, 10, 5)),
        (121, (0, 5, 12, 10)),
        (122, (12, 5, 25, 10)),
        (31, (10, 0, 20, 5)),
    ]
    catalog_path, config_path = write_case(tmp_path, landuse=lu)
    inputs = ingest(load_catalog(catalog_path), load_config(config_path)[0])
    assert sorted(inputs.landuse.frames[2010]["class_code"]) == [12, 12, 21, 31]
    assert any("rolled 2 cropland sub-codes" in n for n in inputs.notes)


def test_unknown_codes_are_listed_with_counts(tmp_path):
    lu = {y: list(p) for y, p in LANDUSE.items()}
    lu[2018] = [*lu[2018], (99, (30, 0, 31, 1)), (99, (31, 0, 32, 1)), (7, (32, 0, 33, 1))]
    catalog_path, config_path = write_case(tmp_path, landuse=lu)
    with pytest.raises(InputError) as err:
        ingest(load_catalog(catalog_path), load_config(config_path)[0])
    msg = str(err.value)
    assert "lu_2018.shp" in msg and "7 (1 features)" in msg and "99 (2 features)" in msg


def test_missing_code_field_names_the_fields(tmp_path):
    catalog_path, config_path = write_case(tmp_path)
    cat = yaml.safe_load(catalog_path.read_text("utf-8"))
    cat["datasets"]["landuse"][2018]["code_field"] = "LUCC"
    catalog_path.write_text(yaml.safe_dump(cat), "utf-8")
    with pytest.raises(InputError, match=r"no field 'LUCC' \(fields: gridcode, name\)"):
        ingest(load_catalog(catalog_path), load_config(config_path)[0])


def test_missing_prj_without_catalog_crs_is_refused_and_catalog_crs_fixes_it(tmp_path):
    catalog_path, config_path = write_case(tmp_path)
    (tmp_path / "data" / "lu_2010.prj").unlink()
    with pytest.raises(InputError, match="carries no CRS"):
        ingest(load_catalog(catalog_path), load_config(config_path)[0])
    cat = yaml.safe_load(catalog_path.read_text("utf-8"))
    cat["datasets"]["landuse"][2010]["crs"] = (
        "+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=krass"
    )
    catalog_path.write_text(yaml.safe_dump(cat), "utf-8")
    assert (
        len(ingest(load_catalog(catalog_path), load_config(config_path)[0]).landuse.frames[2010])
        == 3
    )


def test_geographic_equal_area_crs_is_refused(tmp_path):
    _, config_path = write_case(tmp_path, config_extra={"equal_area_crs": "EPSG:4326"})
    with pytest.raises(InputError, match="geographic CRS"):
        load_config(config_path)


def test_base_year_after_target_and_missing_national_values(tmp_path):
    _, config_path = write_case(
        tmp_path, config_extra={"years": {"base": 2018, "target": 2010}, "price_yuan_per_ha": -1}
    )
    with pytest.raises(InputError) as err:
        load_config(config_path)
    msg = str(err.value)
    assert "base year (2018) must be before the target year (2010)" in msg
    assert "price_yuan_per_ha" in msg


def test_year_missing_from_catalog(tmp_path):
    catalog_path, config_path = write_case(
        tmp_path, config_extra={"years": {"base": 2005, "target": 2018}}
    )
    with pytest.raises(InputError, match=r"no entry for 2005 \(years in the catalog: 2010, 2018\)"):
        ingest(load_catalog(catalog_path), load_config(config_path)[0])


def test_unknown_province_lists_the_available_ones(tmp_path):
    catalog_path, config_path = write_case(
        tmp_path, config_extra={"study_area": {"provinces": ["河南省"]}}
    )
    with pytest.raises(InputError, match="Provinces in the data: 北京市, 河北省"):
        ingest(load_catalog(catalog_path), load_config(config_path)[0])


def test_shipped_coefficients_reproduce_table1_and_esv_derivation():
    coef = load_coefficients(DEFAULT_COEFFICIENTS)
    for code, k in TABLE1_K.items():
        assert coef.k[code] == k
    # deriving k from the ESV column: e.g. 22: 34858 / 39065 = 0.8923 → 0.89
    data = yaml.safe_load(DEFAULT_COEFFICIENTS.read_text("utf-8"))
    esv = {c: e["esv_yuan_per_ha"] for c, e in data["classes"].items()}
    for code, k in TABLE1_K.items():
        assert round(esv[code] / esv[21], 2) == k
    assert coef.of(64) == 2.10 and coef.of(12) == 0.0  # marsh by decision; cropland not ecological


def test_k_derived_from_esv_when_not_given(tmp_path):
    path = tmp_path / "coef.yaml"
    path.write_text(
        "esv_reference_code: 21\nclasses:\n  21: {esv_yuan_per_ha: 40000}\n"
        "  31: {esv_yuan_per_ha: 10000}\n  43: {k: 3}\n",
        "utf-8",
    )
    coef = load_coefficients(path)
    assert coef.k == {21: 1.0, 31: 0.25, 43: 3.0}  # 10000 / 40000 = 0.25


def test_bad_coefficient_file_lists_every_problem(tmp_path):
    path = tmp_path / "coef.yaml"
    path.write_text(
        "esv_reference_code: 21\nclasses:\n  21: {esv_yuan_per_ha: 40000, k: 1}\n"
        "  31: {esv_yuan_per_ha: 10000, k: 0.5}\n  99: {k: 1}\n",
        "utf-8",
    )
    with pytest.raises(InputError) as err:
        load_coefficients(path)
    msg = str(err.value)
    assert "codes [99] are not RESDC level-2 codes" in msg
    assert "class 31: k = 0.5 but ESV 10000 / 40000 = 0.2500" in msg
    path.write_text("classes:\n  21: {k: 1}\n  22: {k: -1}\n", "utf-8")
    with pytest.raises(InputError, match=r"classes\.22\.k"):  # a negative k
        load_coefficients(path)


def test_gbk_shapefile_with_chinese_field_names_and_no_cpg(tmp_path):
    import pyogrio

    catalog_path, config_path = write_case(tmp_path, counties_as_gbk_shapefile=True)
    shp = tmp_path / "data" / "counties.shp"
    gdf = pyogrio.read_dataframe(shp, encoding="gbk").rename(
        columns={"adcode": "代码", "name": "名称", "province": "省", "city": "市"}
    )
    pyogrio.write_dataframe(gdf, shp, encoding="GBK")
    shp.with_suffix(".cpg").unlink(missing_ok=True)
    cat = yaml.safe_load(catalog_path.read_text("utf-8"))
    cat["datasets"]["counties"].update(
        id_field="代码", name_field="名称", province_field="省", city_field="市"
    )
    catalog_path.write_text(yaml.safe_dump(cat, allow_unicode=True), "utf-8")
    inputs = ingest(load_catalog(catalog_path), load_config(config_path)[0])
    assert list(inputs.counties["name"]) == ["甲县", "乙县"]
    assert list(inputs.counties["province"]) == ["北京市", "河北省"]


def test_gbk_statistics_csv_from_excel(tmp_path):
    import pandas as pd

    catalog_path, config_path = write_case(tmp_path)
    csv = tmp_path / "data" / "socio.csv"
    df = pd.read_csv(csv, dtype=str).assign(备注="县级统计")  # a Chinese column, saved as GBK
    df.to_csv(csv, index=False, encoding="gbk")
    inputs = ingest(load_catalog(catalog_path), load_config(config_path)[0])
    assert list(inputs.socio.index) == ["110101", "130102"]
    assert any("read as GBK" in n for n in inputs.notes)


def test_a_failure_processing_what_was_read_is_not_blamed_on_the_file(case, monkeypatch):
    # a bug in repairing or reprojecting must surface as itself (exit 1, "internal error"),
    # not as "could not be read … truncated or corrupt" (exit 2, the user's file)
    import pipeline.ingest.landuse as landuse_module

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(landuse_module._Batches, "add", broken)  # land use only
    catalog, config = case
    with pytest.raises(RuntimeError, match="boom"):
        ingest(load_catalog(catalog), load_config(config)[0])
