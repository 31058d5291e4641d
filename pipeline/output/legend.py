"""The legend of every output: field aliases (Chinese, with units) and descriptions (English),
layer titles, and the classes of the graduated styles (bounds, labels, colours of the .qml
templates in ``pipeline/output/styles/``). Shared by the QGIS styles (:mod:`pipeline.output.qgis`)
and the report's figures and tables (:mod:`pipeline.output.report`).
"""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from pipeline.numbers import legend_bound

__all__ = [
    "FIELDS",
    "LAYER_TITLES",
    "STYLES_DIR",
    "class_labels",
    "classes",
    "diverging_bounds",
    "field_aliases",
    "fill_years",
    "landuse_year",
    "layer_title",
    "qml_colours",
    "round_sig",
    "sequential_bounds",
]

#: the QML templates of the styles
STYLES_DIR = Path(__file__).with_name("styles")

# --------------------------------------------------------------------------------------------
# Field aliases (Chinese, with units) and descriptions (English). {b} / {t}: base / target year.
# --------------------------------------------------------------------------------------------
FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "county_vouchers": {
        "county_id": ("县级行政区代码", "County code (adcode, text)"),
        "name": ("县级行政区名称", "County name"),
        "province": ("省级行政区", "Province"),
        "city": ("地级行政区", "Prefecture-level city"),
        "area_km2": ("县域面积 (km²)", "County area in km², measured in the equal-area CRS"),
        "sf_base_ha": (
            "{b}年标准林面积 (hm²)",
            "M_0: standard-forest area in the base year {b}, hm² (sum of class area × k)",
        ),
        "sf_target_ha": (
            "{t}年标准林面积 (hm²)",
            "M_t: standard-forest area in the target year {t}, hm² (sum of class area × k)",
        ),
        "baseline_ha": (
            "保护基线 B (hm²)",
            "Protection baseline B, hm² of standard forest (M_0, or a protection-rate allocation)",
        ),
        "static_voucher_ha": (
            "静态生态券 ΔM (hm²)",
            "Static voucher ΔM = M_t − B (B = M_0 by default), hm² of standard forest",
        ),
        "gdp_coef": (
            "{t}年经济发展系数 G_t",
            "G_t: county GDP per capita / national GDP per capita in {t} (dimensionless)",
        ),
        "pop_coef": (
            "{t}年人口密度系数 P_t",
            "P_t: county population density / national population density in {t} (dimensionless)",
        ),
        "voucher_ha": (
            "动态生态券 E (hm²)",
            "Dynamic voucher E = ΔM × G_t × P_t, hm²; E < 0 the county must buy (demand), "
            "E > 0 it can sell (supply)",
        ),
        "role": ("供需角色", "demand (E < 0), supply (E > 0) or balanced"),
        "value_yuan": ("生态券交易价值 Q_t (元)", "Trade value Q_t = E × q_t, yuan"),
        "coverage_base": (
            "{b}年土地利用覆盖率",
            "Share (0–1) of the county area covered by the {b} land-use map",
        ),
        "coverage_target": (
            "{t}年土地利用覆盖率",
            "Share (0–1) of the county area covered by the {t} land-use map",
        ),
        "bought_ha": ("买入生态券 (hm²)", "Vouchers the county bought on the market, hm²"),
        "sold_ha": ("卖出生态券 (hm²)", "Vouchers the county sold on the market, hm²"),
        "unmet_ha": ("未满足需求 (hm²)", "Demand left unmet after the market, hm²"),
        "unsold_ha": ("未售出供给 (hm²)", "Supply left unsold after the market, hm²"),
        "voucher_ha_p05": ("生态券 E 第5百分位 (hm²)", "E, 5th percentile of the Monte Carlo, hm²"),
        "voucher_ha_p50": ("生态券 E 中位数 (hm²)", "E, median of the Monte Carlo, hm²"),
        "voucher_ha_p95": (
            "生态券 E 第95百分位 (hm²)",
            "E, 95th percentile of the Monte Carlo, hm²",
        ),
        "p_demand": ("为需求方的概率", "Share of the Monte Carlo draws with E < 0 (0–1)"),
        "value_yuan_p05": (
            "交易价值 Q_t 第5百分位 (元)",
            "Q_t, 5th percentile of the Monte Carlo, yuan",
        ),
        "value_yuan_p50": ("交易价值 Q_t 中位数 (元)", "Q_t, median of the Monte Carlo, yuan"),
        "value_yuan_p95": (
            "交易价值 Q_t 第95百分位 (元)",
            "Q_t, 95th percentile of the Monte Carlo, yuan",
        ),
    },
    "class_areas": {
        "county_id": ("县级行政区代码", "County code (adcode, text)"),
        "year": ("年份", "Year of the land-use map"),
        "class_code": ("土地利用类型代码", "RESDC / CNLUCC level-2 land-use code"),
        "area_ha": ("面积 (hm²)", "Area of the class in the county, hm² (equal-area CRS)"),
        "legend": ("图例", "Legend of the year's land-use map (resdc, sandiao, clcd, … or a file)"),
    },
    "transitions": {
        "county_id": ("县级行政区代码", "County code (adcode, text)"),
        "from_code": ("{b}年土地利用类型代码", "Land-use code in the base year {b}"),
        "to_code": ("{t}年土地利用类型代码", "Land-use code in the target year {t}"),
        "area_ha": ("转移面积 (hm²)", "Area that changed from from_code to to_code, hm²"),
        "from_group": (
            "{b}年一级类",
            "Group of from_code (cropland, forest, grassland, water, built-up, unused; no data)",
        ),
        "to_group": ("{t}年一级类", "Group of to_code"),
        "from_legend": ("{b}年图例", "Legend of the base year {b}"),
        "to_legend": ("{t}年图例", "Legend of the target year {t}"),
    },
    "landuse_<year>": {  # landuse_2010, landuse_2018, … (outputs: {landuse: true})
        "county_id": ("县级行政区代码", "County code (adcode, text)"),
        "class_code": ("{y}年土地利用类型代码", "Land-use code in {y} (the year's legend)"),
        "class_group": (
            "{y}年一级类",
            "Group of class_code (cropland, forest, grassland, water, built-up, unused)",
        ),
        "area_ha": ("面积 (hm²)", "Area of the piece, hm² (as class_areas measures it)"),
        "legend": ("图例", "Legend of the year's land-use map (resdc, sandiao, clcd, … or a file)"),
    },
    "landuse_change": {
        "county_id": ("县级行政区代码", "County code (adcode, text)"),
        "from_code": ("{b}年土地利用类型代码", "Land-use code in the base year {b}"),
        "to_code": ("{t}年土地利用类型代码", "Land-use code in the target year {t}"),
        "area_ha": ("变化面积 (hm²)", "Area of the piece, hm² (equal-area CRS)"),
        "sf_change_ha": (
            "标准林面积变化 (hm²)",
            "Change of standard forest on the piece, area_ha × (k_to − k_from), hm²; summed per "
            "county it is the static voucher M_t − M_0",
        ),
    },
    "summary": {
        "key": ("指标", "Name of the region total or provenance entry"),
        "value": ("数值", "Value of a region total"),
        "unit": ("单位", "Unit of the value"),
        "text": ("说明", "Text of a provenance entry (inputs, checksums, config, versions, time)"),
    },
    "trades": {
        "seller_id": ("卖方代码", "County code of the seller (supply)"),
        "seller_name": ("卖方", "Selling county"),
        "buyer_id": ("买方代码", "County code of the buyer (demand)"),
        "buyer_name": ("买方", "Buying county"),
        "volume_ha": ("交易量 (hm²)", "Traded vouchers, hm² of standard forest"),
        "price_yuan_per_ha": ("成交价 (元/hm²)", "Price of the trade, yuan per hm²"),
        "value_yuan": ("交易额 (元)", "Value of the trade, yuan"),
        "level": ("交易层级", "Level at which the trade was balanced (city, province, region)"),
        "distance_km": ("距离 (km)", "Distance seller → buyer (centroids), km"),
    },
}

#: layer names shown in the project (Chinese, English table name)
LAYER_TITLES = {
    "county_vouchers": "县级生态券 county_vouchers",
    "trades": "生态券交易 trades",
    "summary": "汇总与来源 summary",
    "class_areas": "各类用地面积 class_areas",
    "transitions": "土地利用转移 transitions",
    "landuse_change": "土地利用变化 landuse_change",
}


# --------------------------------------------------------------------------------------------
# Class bounds (the QGIS styles and the report's figures use the same classes)
# --------------------------------------------------------------------------------------------
def round_sig(x: float, sig: int = 2, mode: str = "nearest") -> float:
    """``x`` rounded to ``sig`` significant figures; ``mode`` 'up' / 'down' round towards ±∞."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    exp = math.floor(math.log10(abs(x))) - sig + 1
    q = 10.0**exp
    f = {"nearest": round, "up": math.ceil, "down": math.floor}[mode]
    return float(round(f(x / q) * q, max(0, -exp)))


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def diverging_bounds(values: np.ndarray) -> list[float]:
    """8 bounds of 7 classes symmetric around 0: 3 negative, a neutral one around 0, 3 positive.

    The outer bounds are max |v| rounded up, so every value falls in a class (QGIS ranges include
    both ends); inner bounds are rounded quantiles of |v| (the neutral half-width is at most 2 %
    of the largest |v|), or fixed fractions of it when the data are too few to tell apart.
    """
    a = np.abs(_finite(values))
    top = float(a.max()) if a.size else 0.0
    if top <= 0:
        top = 1.0
    top = max(round_sig(top, 2, "up"), top)
    nz = a[a > 0]
    inner: list[float] = []
    if nz.size:
        q10, q40, q75 = np.quantile(nz, [0.1, 0.4, 0.75])
        inner = [
            round_sig(min(float(q10), top / 50), 1, "down"),
            round_sig(float(q40)),
            round_sig(float(q75)),
        ]
    if not (inner and 0 < inner[0] < inner[1] < inner[2] < top):
        inner = [round_sig(top * f) for f in (0.02, 0.2, 0.5)]
    b0, b1, b2 = inner
    return [-top, -b2, -b1, -b0, b0, b1, b2, top]


def sequential_bounds(values: np.ndarray, n: int) -> list[float]:
    """``n + 1`` increasing bounds enclosing every value (0 as the floor for non-negative data),
    inner bounds at rounded quantiles (levels 0.9·i/(n − 1): the top class is the top 10 %), or
    at equal intervals when quantiles coincide."""
    v = _finite(values)
    lo = float(v.min()) if v.size else 0.0
    hi = float(v.max()) if v.size else 1.0
    low = 0.0 if lo >= 0 else min(round_sig(lo, 2, "down"), lo)
    top = max(round_sig(hi, 2, "up"), hi) if hi > 0 else hi
    if top <= low:
        top = low + 1.0
    # quantile levels spread over [0, 0.9] rather than [0, 1]: the top class holds the top 10 %
    # of the values, not the top 1/n (with 5 classes the top 20 % ran from 48,000 to 480,000 hm²
    # on the demo and covered the whole mountainous north in one colour)
    levels = [0.9 * i / (n - 1) for i in range(1, n)] if n > 1 else []
    inner = [round_sig(float(q)) for q in np.quantile(v, levels)] if v.size else []
    bounds = [low, *inner, top]
    if len(bounds) != n + 1 or any(b >= c for b, c in itertools.pairwise(bounds)):
        step = (top - low) / n
        bounds = [low, *(round_sig(low + i * step) for i in range(1, n)), top]
    if any(b >= c for b, c in itertools.pairwise(bounds)):  # tiny ranges: plain equal intervals
        bounds = [low + i * (top - low) / n for i in range(n)] + [top]
    return bounds


def class_labels(bounds: list[float], kind: str, words: tuple[str, str, str]) -> list[str]:
    labels = []
    n = len(bounds) - 1
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if kind == "diverging" and i < n // 2:
            labels.append(f"{words[0]} {legend_bound(-hi)} – {legend_bound(-lo)}")
        elif kind == "diverging" and i == n // 2:
            labels.append(f"{words[1]} {legend_bound(lo)} – {legend_bound(hi)}")
        elif kind == "diverging":
            labels.append(f"{words[2]} {legend_bound(lo)} – {legend_bound(hi)}")
        else:
            labels.append(f"{legend_bound(lo)} – {legend_bound(hi)}")
    return labels


def classes(kind: str, values: np.ndarray, n: int, words: tuple[str, str, str]):
    """(bounds, labels) for a diverging (always 7 classes) or sequential (``n``) style."""
    bounds = diverging_bounds(values) if kind == "diverging" else sequential_bounds(values, n)
    return bounds, class_labels(bounds, kind, words)


def qml_colours(qml: str) -> list[str]:
    """'r,g,b,a' fill colour of each range/category symbol of a template, in class order."""
    rend = ET.parse(STYLES_DIR / qml).getroot().find("renderer-v2")
    out = []
    for sym in rend.find("symbols").findall("symbol"):
        for opt in sym.iter("Option"):
            if opt.get("name") == "color":
                out.append(opt.get("value"))
                break
    return out


def fill_years(text: str, years: tuple[int, int] | None) -> str:
    b, t = (str(years[0]), str(years[1])) if years else ("基期", "目标年")
    return text.replace("{b}", b).replace("{t}", t)


def field_aliases(table: str, columns: list[str], years) -> dict[str, tuple[str, str]]:
    year = landuse_year(table)
    known = FIELDS.get(table if year is None else "landuse_<year>", {})
    return {
        c: (_fill(known[c][0], years, year), _fill(known[c][1], years, year))
        for c in columns
        if c in known
    }


def landuse_year(table: str) -> str | None:
    """The year of a layer ``landuse_<year>`` (each year's land use), else None."""
    m = re.fullmatch(r"landuse_(\d{4})", table)
    return m.group(1) if m else None


def layer_title(table: str) -> str:
    """The name of a layer in the QGIS project: its title, else its table name."""
    year = landuse_year(table)
    if year is not None:
        return f"{year}年土地利用 {table}"
    return LAYER_TITLES.get(table, table)


def _fill(text: str, years, year: str | None) -> str:
    return fill_years(text.replace("{y}", year) if year else text, years)
