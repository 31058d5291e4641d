"""Tiny hand-computable fixtures: rectangular counties and land-use patches in the Albers CRS.

Coordinates are metres in the default equal-area CRS (Krasovsky Albers), offset to about 36°N, so
every area can be written down: a 10 km × 10 km county is 10,000 ha.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
import yaml

from pipeline.codes import RESDC_ALBERS_PRJ
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS

X0, Y0 = 1_000_000.0, 4_000_000.0  # about 117°E, 36°N in the Albers plane
KM = 1000.0

#: RESDC's own .prj for its Albers shapefiles (Krasovsky datum)
RESDC_PRJ = RESDC_ALBERS_PRJ


def box_km(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle given in km from the fixture origin."""
    return shapely.box(X0 + x0 * KM, Y0 + y0 * KM, X0 + x1 * KM, Y0 + y1 * KM)


# Two 10 km × 10 km counties side by side: A = [0,10]×[0,10] km, B = [10,20]×[0,10] km.
COUNTIES = [
    {
        "adcode": "110101",
        "name": "甲县",
        "province": "北京市",
        "city": "北京市",
        "box": (0, 0, 10, 10),
    },
    {
        "adcode": "130102",
        "name": "乙县",
        "province": "河北省",
        "city": "石家庄市",
        "box": (10, 0, 20, 10),
    },
]
# (code, box in km). Cropland crosses the A|B border and runs 5 km past B (outside every county).
LANDUSE = {
    2010: [
        (21, (0, 0, 10, 5)),  # A forest 5,000 ha
        (12, (0, 5, 25, 10)),  # cropland: A 5,000 ha, B 5,000 ha, outside 2,500 ha
        (31, (10, 0, 20, 5)),  # B high-cover grass 5,000 ha
    ],
    2018: [
        (21, (0, 0, 10, 2.5)),  # A forest 2,500 ha
        (51, (0, 2.5, 10, 5)),  # A urban 2,500 ha (lost forest)
        (12, (0, 5, 25, 10)),  # cropland as before
        (43, (10, 0, 15, 5)),  # B reservoir 2,500 ha (from grass)
        (31, (15, 0, 20, 5)),  # B grass 2,500 ha
    ],
}
# GDP in 10⁴ yuan, population in 10⁴ persons (scales 10000 in the catalog).
SOCIO = [
    {"code": "110101", "year": 2018, "gdp": 100000, "pop": 10},  # 1e9 yuan, 100,000 persons
    {"code": "130102", "year": 2018, "gdp": 30000, "pop": 1},  # 3e8 yuan, 10,000 persons
    {"code": "110101", "year": 2010, "gdp": 50000, "pop": 9},
    {"code": "130102", "year": 2010, "gdp": 20000, "pop": 1},
]
NATIONAL_2018 = {"gdp_per_capita_yuan": 50000, "population_density_per_km2": 100}


def write_landuse(path: Path, patches: list, encoding: str = "GBK", keep_cpg: bool = False) -> Path:
    from pipeline.codes import RESDC_CLASSES

    gdf = gpd.GeoDataFrame(
        {
            "gridcode": [c for c, _ in patches],
            "name": [RESDC_CLASSES.get(c // 10 if c > 100 else c, "?") for c, _ in patches],
        },
        geometry=[box_km(*b) for _, b in patches],
        crs=DEFAULT_EQUAL_AREA_CRS,
    )
    pyogrio.write_dataframe(gdf, path, encoding=encoding)
    path.with_suffix(".prj").write_text(RESDC_PRJ)
    if not keep_cpg:
        path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


def write_case(
    folder: Path,
    counties: list | None = None,
    landuse: dict | None = None,
    socio: list | None = None,
    config_extra: dict | None = None,
    counties_as_gbk_shapefile: bool = False,
) -> tuple[Path, Path]:
    """Write a complete small input set (data/ beside catalog.yaml and config.yaml)."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    counties = COUNTIES if counties is None else counties
    gdf = gpd.GeoDataFrame(
        [{k: v for k, v in c.items() if k != "box"} for c in counties],
        geometry=[box_km(*c["box"]) for c in counties],
        crs=DEFAULT_EQUAL_AREA_CRS,
    )
    counties_file = "counties.gpkg"
    if counties_as_gbk_shapefile:  # RESDC style: GBK attributes, no .cpg
        counties_file = "counties.shp"
        pyogrio.write_dataframe(gdf, data / counties_file, encoding="GBK")
        (data / "counties.cpg").unlink(missing_ok=True)
    else:
        pyogrio.write_dataframe(gdf, data / counties_file, layer="counties")
    landuse = LANDUSE if landuse is None else landuse
    for year, patches in landuse.items():
        write_landuse(data / f"lu_{year}.shp", patches)
    pd.DataFrame(SOCIO if socio is None else socio).to_csv(data / "socio.csv", index=False)
    catalog = {
        "datasets": {
            "counties": {"path": f"data/{counties_file}", "id_field": "adcode"},
            "landuse": {
                y: {"path": f"data/lu_{y}.shp", "format": "vector", "code_field": "gridcode"}
                for y in landuse
            },
            "socioeconomic": {
                "path": "data/socio.csv",
                "gdp_scale": 10000,
                "population_scale": 10000,
            },
        }
    }
    config = {
        "years": {"base": 2010, "target": 2018},
        "national": {2018: NATIONAL_2018},
        "price_yuan_per_ha": 50000,
        **(config_extra or {}),
    }
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog, allow_unicode=True), "utf-8")
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return folder / "catalog.yaml", folder / "config.yaml"


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path]:
    """The two-county case in a folder whose name has non-ASCII characters."""
    return write_case(tmp_path / "生态券 案例")
