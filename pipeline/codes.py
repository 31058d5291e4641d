"""The RESDC / CNLUCC land-use classification (level-2 codes) and code roll-up."""

from __future__ import annotations

import numpy as np

#: RESDC level-2 code → Chinese class name.
RESDC_CLASSES: dict[int, str] = {
    11: "水田",
    12: "旱地",
    21: "有林地",
    22: "灌木林",
    23: "疏林地",
    24: "其他林地",
    31: "高覆盖度草地",
    32: "中覆盖度草地",
    33: "低覆盖度草地",
    41: "河渠",
    42: "湖泊",
    43: "水库坑塘",
    44: "冰川永久积雪",
    45: "滩涂",
    46: "滩地",
    51: "城镇用地",
    52: "农村居民点",
    53: "其他建设用地",
    61: "沙地",
    62: "戈壁",
    63: "盐碱地",
    64: "沼泽地",
    65: "裸土地",
    66: "裸岩石质地",
    67: "其他",
}

#: The .prj of RESDC's Albers shapefiles (Krasovsky datum), as ArcGIS writes it.
RESDC_ALBERS_PRJ = (
    'PROJCS["Krasovsky_1940_Albers",GEOGCS["GCS_Krasovsky_1940",DATUM["D_Krasovsky_1940",'
    'SPHEROID["Krasovsky_1940",6378245.0,298.3]],PRIMEM["Greenwich",0.0],'
    'UNIT["Degree",0.0174532925199433]],PROJECTION["Albers"],PARAMETER["False_Easting",0.0],'
    'PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",105.0],'
    'PARAMETER["Standard_Parallel_1",25.0],PARAMETER["Standard_Parallel_2",47.0],'
    'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)

#: Some releases split cropland by terrain into 111–114 (水田) and 121–124 (旱地).
CROPLAND_SUBCODES: dict[int, int] = {c: c // 10 for c in (111, 112, 113, 114, 121, 122, 123, 124)}


def roll_up(codes: np.ndarray) -> np.ndarray:
    """Map 3-digit cropland sub-codes to their level-2 code; other codes are returned unchanged."""
    out = np.asarray(codes).astype(np.int64, copy=True)
    sub = np.isin(out, list(CROPLAND_SUBCODES))
    out[sub] //= 10
    return out


def unknown_codes(codes: np.ndarray) -> dict[int, int]:
    """Codes (after roll-up) that are not in the RESDC table, with how often each occurs."""
    values, counts = np.unique(roll_up(codes), return_counts=True)
    return {int(v): int(n) for v, n in zip(values, counts) if int(v) not in RESDC_CLASSES}
