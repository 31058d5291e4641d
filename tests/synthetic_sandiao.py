"""A synthetic 三调 (Third National Land Survey) data set, as the survey delivers it: one file
geodatabase per county (``<adcode>.gdb``, layer ``DLTB`` 地类图斑, text ``DLBM`` codes such as
"0101", "0301", "1101"), each county in its own CGCS2000 3-degree Gauss-Krüger zone, and a study
area spanning two zones (CM 114°E, EPSG:4547, and CM 117°E, EPSG:4548; the zone boundary is
115.5°E).

Each county is a square of ``N × N`` land-use patches of ``PATCH`` metres in its zone's plane
(one county straddles 115.5°E, delivered in the western zone as the survey would). The counties
file (EPSG:4490, lon/lat) carries every patch corner of the county's outline, so county edges and
patch edges meet vertex for vertex.

The independent answer: each patch's area on the GRS 1980 ellipsoid (CGCS2000) by Karney's
geodesic polygon area (pyproj.Geod) of its outline densified every metre in the Gauss-Krüger
plane — no equal-area projection involved. ``TBMJ`` (图斑面积) carries the same area, to 0.01 m²,
as the survey's own ellipsoidal area does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Geod, Transformer

#: Albers on CGCS2000's ellipsoid (GRS 1980): areas there are the ellipsoidal areas
ALBERS_CGCS2000 = (
    "+proj=aea +lat_0=0 +lat_1=25 +lat_2=47 +lon_0=105 +x_0=0 +y_0=0 +ellps=GRS80 +units=m +no_defs"
)
ZONES = {114: "EPSG:4547", 117: "EPSG:4548"}  # CGCS2000 / 3-degree Gauss-Kruger CM …E
PATCH = 300.0  # metres
N = 6  # patches per side: a county is 1.8 km × 1.8 km

#: (adcode, name, centre of the county's north-west corner (lon, lat), zone central meridian)
COUNTIES = [
    ("130601", "西甲县", (115.20, 38.90), 114),
    ("130602", "跨带县", (115.49, 38.80), 114),  # straddles 115.5°E, delivered in zone CM 114°E
    ("130603", "东乙县", (115.60, 38.95), 117),
    ("130604", "东丙县", (115.80, 38.70), 117),
]

#: GB/T 21010-2017 / 三调 codes drawn for the patches (text, kept exactly)
SANDIAO_CODES = ["0101", "0103", "0201", "0301", "0305", "0307", "0401", "0404",
                 "0702", "1003", "1101", "1104", "1106", "1108", "1203", "0303"]  # fmt: skip
#: GB/T 21010-2007 (二调) codes for a base year of the same patches
ERDIAO_CODES = ["011", "013", "021", "031", "032", "033", "041", "043",
                "203", "102", "111", "114", "116", "125", "123", "031"]  # fmt: skip


@dataclass(frozen=True)
class SyntheticSurvey:
    folder: Path  # the year's folder of <adcode>.gdb
    counties: Path  # counties file (GeoPackage, EPSG:4490)
    expected: pd.DataFrame  # county_id, code, area_m2 (geodesic, GRS 1980)
    patches: pd.DataFrame  # county_id, patch (row-major index), code, area_m2


def _geodesic_area(
    ring_xy: np.ndarray, to_geo: Transformer, geod: Geod, step: float = 1.0
) -> float:
    """Ellipsoidal area of a polygon straight in a projected plane: its edges densified every
    ``step`` metres there, taken to lon/lat, and Karney's polygon area."""
    pts = []
    for (x0, y0), (x1, y1) in itertools.pairwise(ring_xy):
        n = max(1, int(np.ceil(np.hypot(x1 - x0, y1 - y0) / step)))
        t = np.arange(n) / n
        pts.append(np.column_stack([x0 + (x1 - x0) * t, y0 + (y1 - y0) * t]))
    xy = np.vstack(pts)
    lon, lat = to_geo.transform(xy[:, 0], xy[:, 1])
    area, _ = geod.polygon_area_perimeter(lon, lat)
    return abs(area)


def _outline(x0: float, y0: float) -> np.ndarray:
    """The county square's outline (clockwise from the north-west corner) through every patch
    corner, closed."""
    s = np.arange(N + 1) * PATCH
    top = np.column_stack([x0 + s, np.full(N + 1, y0)])
    right = np.column_stack([np.full(N, x0 + N * PATCH), y0 - s[1:]])
    bottom = np.column_stack([x0 + N * PATCH - s[1:], np.full(N, y0 - N * PATCH)])
    left = np.column_stack([np.full(N, x0), y0 - N * PATCH + s[1:]])
    return np.vstack([top, right, bottom, left])


def write_survey(
    folder: Path, year: int = 2019, codes: list[str] | None = None, seed: int = 15
) -> SyntheticSurvey:
    """Write ``folder/sandiao_<year>/<adcode>.gdb`` (layer DLTB) for the four counties, and
    ``folder/counties.gpkg``; return the files and the independent per-county, per-code areas."""
    codes = SANDIAO_CODES if codes is None else codes
    rng = np.random.default_rng(seed)
    geod = Geod(ellps="GRS80")
    year_dir = Path(folder) / f"sandiao_{year}"
    year_dir.mkdir(parents=True, exist_ok=True)
    county_rows = []
    patch_rows = []
    for adcode, name, (lon, lat), cm in COUNTIES:
        crs = ZONES[cm]
        to_plane = Transformer.from_crs("EPSG:4490", crs, always_xy=True)
        to_geo = Transformer.from_crs(crs, "EPSG:4490", always_xy=True)
        x0, y0 = to_plane.transform(lon, lat)
        x0, y0 = round(x0), round(y0)  # whole metres, as a surveyor's grid would be
        geoms, dlbm, tbmj = [], [], []
        for i in range(N):
            for j in range(N):
                box = shapely.box(x0 + j * PATCH, y0 - (i + 1) * PATCH, x0 + (j + 1) * PATCH,
                                  y0 - i * PATCH)  # fmt: skip
                code = codes[int(rng.integers(len(codes)))]
                ring = np.asarray(box.exterior.coords)
                area = _geodesic_area(ring, to_geo, geod)
                geoms.append(box)
                dlbm.append(code)
                tbmj.append(round(area, 2))
                patch_rows.append((adcode, i * N + j, code, area))
        dltb = gpd.GeoDataFrame(
            {
                "BSM": [f"{adcode}{k:08d}" for k in range(len(geoms))],
                "DLBM": dlbm,
                "DLMC": dlbm,  # the name field; the pipeline reads DLBM
                "TBMJ": tbmj,
                "ZLDWDM": [adcode] * len(geoms),
            },
            geometry=geoms,
            crs=crs,
        )
        pyogrio.write_dataframe(dltb, year_dir / f"{adcode}.gdb", layer="DLTB",
                                driver="OpenFileGDB")  # fmt: skip
        outline = _outline(x0, y0)
        lon_o, lat_o = to_geo.transform(outline[:, 0], outline[:, 1])
        county_rows.append(
            {
                "adcode": adcode,
                "name": name,
                "province": "河北省",
                "city": "保定市",
                "geometry": shapely.Polygon(np.column_stack([lon_o, lat_o])),
            }
        )
    counties_path = Path(folder) / "counties.gpkg"
    if not counties_path.exists():
        gpd.GeoDataFrame(county_rows, crs="EPSG:4490").to_file(counties_path, layer="counties")
    patches = pd.DataFrame(patch_rows, columns=["county_id", "patch", "code", "area_m2"])
    expected = patches.groupby(["county_id", "code"], as_index=False)["area_m2"].sum()
    return SyntheticSurvey(year_dir, counties_path, expected, patches)
