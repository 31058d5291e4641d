"""Fast tests of the demo-data generator on a small Beijing build (5,000 polygons)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely

from pipeline.codes import RESDC_ALBERS_PRJ, RESDC_CLASSES
from pipeline.demo import DemoPaths, build_demo_data
from pipeline.demo.counties import MAINLAND_PROVINCES, resolve_provinces
from pipeline.demo.gcj02 import gcj02_to_wgs84, wgs84_to_gcj02
from pipeline.demo.urban import geoms_to_albers

BJ = ("北京市",)
N_POLY = 5_000


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoPaths:
    return build_demo_data(
        tmp_path_factory.mktemp("demo_a"), provinces=BJ, polygons_per_year=N_POLY, progress=False
    )


@pytest.fixture(scope="module")
def counties(demo: DemoPaths):  # type: ignore[no-untyped-def]
    return pyogrio.read_dataframe(demo.counties, layer="counties")


def _landuse(path: Path):  # type: ignore[no-untyped-def]
    return pyogrio.read_dataframe(path, encoding="GBK")


def test_counties_beijing(counties) -> None:  # type: ignore[no-untyped-def]
    assert len(counties) == 16
    assert counties.crs.to_epsg() == 4326
    assert list(counties.columns[:4]) == ["adcode", "name", "province", "city"]
    assert counties["adcode"].str.fullmatch(r"11\d{4}").all()
    assert counties["adcode"].is_unique
    assert set(counties["province"]) == {"北京市"}
    names = set(counties["name"])
    assert {"东城区", "海淀区", "房山区", "延庆区", "密云区"} <= names
    assert counties["name"].str.len().gt(0).all()
    assert shapely.is_valid(counties.geometry.values).all()


def test_resolve_provinces_all() -> None:
    provs = resolve_provinces(["all"])
    assert len(provs) == 31 == len(MAINLAND_PROVINCES)
    assert not {"台湾省", "香港特别行政区", "澳门特别行政区"} & set(provs)
    assert resolve_provinces(("河北省", "北京市")) == ("北京市", "河北省")
    with pytest.raises(ValueError, match="unknown province"):
        resolve_provinces(["Hebei"])


def test_gcj02_offset_and_round_trip() -> None:
    # Tiananmen, WGS84: GCJ-02 shifts it by ≈ (+0.00624°, +0.00140°), about 556 m
    lon, lat = np.array([116.391275]), np.array([39.906217])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon[0] - lon[0] == pytest.approx(0.006241, abs=2e-6)
    assert glat[0] - lat[0] == pytest.approx(0.001401, abs=2e-6)
    dist = pyproj.Geod(ellps="WGS84").inv(lon, lat, glon, glat)[2][0]
    assert 450 < dist < 650
    # round trip over a grid covering China: within 1 cm (≈ 1e-7°)
    gx, gy = np.meshgrid(np.linspace(74, 134, 61), np.linspace(18, 53, 36))
    wlon, wlat = gcj02_to_wgs84(*wgs84_to_gcj02(gx.ravel(), gy.ravel()))
    assert np.abs(wlon - gx.ravel()).max() < 1e-7
    assert np.abs(wlat - gy.ravel()).max() < 1e-7


def test_landuse_partition_covers_counties(demo: DemoPaths, counties) -> None:  # type: ignore[no-untyped-def]
    cg = geoms_to_albers(counties.geometry.values)
    for path in (demo.landuse_2010, demo.landuse_2018):
        lu = _landuse(path)
        assert len(lu) >= N_POLY
        g = lu.geometry.values
        assert shapely.is_valid(g).all()
        # no overlaps: the sum of the areas equals the area of the union
        total = shapely.area(g).sum()
        assert shapely.area(shapely.union_all(g)) == pytest.approx(total, rel=1e-6)
        # complete cover: per county, Σ area(land use ∩ county) == area(county)
        tree = shapely.STRtree(g)
        ci, li = tree.query(cg, predicate="intersects")
        inter = np.bincount(ci, shapely.area(shapely.intersection(g[li], cg[ci])), len(cg))
        np.testing.assert_allclose(inter, shapely.area(cg), rtol=1e-6)


def test_landuse_codes_and_format(demo: DemoPaths) -> None:
    lu10, lu18 = _landuse(demo.landuse_2010), _landuse(demo.landuse_2018)
    for path, lu in ((demo.landuse_2010, lu10), (demo.landuse_2018, lu18)):
        assert not path.with_suffix(".cpg").exists()
        assert path.with_suffix(".prj").read_text() == RESDC_ALBERS_PRJ
        assert set(lu["gridcode"]) <= set(RESDC_CLASSES)
        assert (lu["name"] == lu["gridcode"].map(RESDC_CLASSES)).all()
        raw = path.with_suffix(".dbf").read_bytes()
        assert "旱地".encode("gbk") in raw
        assert "旱地".encode() not in raw
    # a realistic mix, and the two years differ
    for code in (12, 21, 22, 31, 41, 43, 51, 52):
        assert (lu10["gridcode"] == code).any(), code
    assert len(lu18) > len(lu10)
    a10 = lu10.assign(a=lu10.area).groupby("gridcode").a.sum()
    a18 = lu18.assign(a=lu18.area).groupby("gridcode").a.sum()
    assert a18[51] > a10[51]  # cities grow
    assert a18.get(12, 0) < a10[12]  # mostly at the cost of cropland


def test_socio_csv(demo: DemoPaths, counties) -> None:  # type: ignore[no-untyped-def]
    df = pd.read_csv(demo.socio, dtype={"code": str})
    assert list(df.columns) == ["code", "year", "gdp", "pop"]
    assert len(df) == 2 * len(counties)
    assert not df.duplicated(["code", "year"]).any()
    assert set(df["code"]) == set(counties["adcode"])
    assert set(df["year"]) == {2010, 2018}
    assert (df["gdp"] > 0).all() and (df["pop"] > 0).all()
    area = dict(zip(counties["adcode"], shapely.area(geoms_to_albers(counties.geometry.values))))
    d10 = df[df.year == 2010].set_index("code")
    dens = d10["pop"] * 1e4 / d10.index.map(lambda c: area[c] / 1e6)
    gpc = d10["gdp"] / d10["pop"]  # yuan per person
    assert dens["110101"] > 5 * dens["110119"]  # 东城区 ≫ 延庆区
    assert gpc["110101"] > 30808 > gpc["110119"]


def test_provenance_and_skip(demo: DemoPaths) -> None:
    prov = json.loads(demo.provenance.read_text("utf-8"))
    assert "SYNTHETIC" in prov["synthetic"]["land_use"]
    assert "GCJ-02" in prov["counties"]["conversion"]
    assert prov["args"]["seed"] == 2022
    assert prov["landuse"]["polygons_2010"] >= N_POLY
    stamp = demo.landuse_2010.stat().st_mtime_ns
    again = build_demo_data(demo.root, provinces=BJ, polygons_per_year=N_POLY, progress=False)
    assert again == demo
    assert demo.landuse_2010.stat().st_mtime_ns == stamp  # skipped: same arguments


def test_deterministic(demo: DemoPaths, tmp_path: Path) -> None:
    other = build_demo_data(tmp_path, provinces=BJ, polygons_per_year=N_POLY, progress=False)
    for a, b in (
        (demo.landuse_2010, other.landuse_2010),
        (demo.landuse_2018, other.landuse_2018),
        (demo.counties, other.counties),
    ):
        da, db = pyogrio.read_dataframe(a), pyogrio.read_dataframe(b)
        pd.testing.assert_frame_equal(da.drop(columns="geometry"), db.drop(columns="geometry"))
        assert (shapely.to_wkb(da.geometry.values) == shapely.to_wkb(db.geometry.values)).all()
    assert demo.socio.read_bytes() == other.socio.read_bytes()
    assert demo.landuse_2010.read_bytes() == other.landuse_2010.read_bytes()
