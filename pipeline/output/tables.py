"""The report's tables as people read them: :func:`display_tables` (every table of the report, by
name), built from the run's layers with Chinese labels. The table object (:class:`Column`,
:class:`Shown`) and the CSV/XLSX files (:func:`write_tables`) are in
:mod:`pipeline.output.table_files`, whose names this module passes on. Values are kept at full
precision in :attr:`Shown.frame` and rounded as they are written; cells below 10⁻⁶ hm² in the
transfer matrix are rounding slivers and are left blank. Full precision stays in the GeoPackage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from pipeline.codes import RESDC_CLASSES
from pipeline.numbers import kind_of
from pipeline.output.table_files import (
    SLIVER_HA,
    TABLES,
    XLSX_NAME,
    Column,
    Shown,
    is_number,
    write_tables,
)

__all__ = [
    "EXTRA_COLUMNS",
    "LEVEL_LABELS",
    "ROLE_LABELS",
    "SHORT_LABELS",
    "SLIVER_HA",
    "SUMMARY_LABELS",
    "TABLES",
    "TOP_N",
    "XLSX_NAME",
    "Column",
    "Shown",
    "county_columns",
    "display_tables",
    "is_number",
    "other_legends",
    "write_tables",
    "years_text",
]

TOP_N = 10
ROLE_LABELS = {"demand": "需求方", "supply": "供给方", "balanced": "平衡"}
LEVEL_LABELS = {"city": "市内", "province": "省内", "region": "区域"}
LEVEL1 = {1: "耕地", 2: "林地", 3: "草地", 4: "水域", 5: "建设用地", 6: "未利用地"}

#: summary keys: Chinese label and unit ({b}/{t}: the base and target year)
SUMMARY_LABELS: dict[str, tuple[str, str]] = {
    "sf_base_ha": ("{b}年标准林面积 M₀", "hm²"),
    "sf_target_ha": ("{t}年标准林面积 Mₜ", "hm²"),
    "baseline_ha": ("保护基线 B", "hm²"),
    "static_voucher_ha": ("标准林面积变化 ΔM", "hm²"),
    "demand_ha": ("生态券需求量 Σ|E|（E < 0）", "hm²"),
    "supply_ha": ("生态券供给量 ΣE（E > 0）", "hm²"),
    "net_ha": ("净需求（需求 − 供给）", "hm²"),
    "demand_value_yuan": ("需求价值（需求 × qₜ）", "元"),
    "supply_value_yuan": ("供给价值（供给 × qₜ）", "元"),
    "net_value_yuan": ("净需求价值", "元"),
    "n_counties": ("县级单元数", "个"),
    "n_demand": ("需求方县数", "个"),
    "n_supply": ("供给方县数", "个"),
    "n_balanced": ("平衡县数", "个"),
    "traded_ha": ("成交量", "hm²"),
    "traded_value_yuan": ("成交额", "元"),
    "price_yuan_per_ha": ("成交价格", "元/hm²"),
    "floor_price_yuan_per_ha": ("政府底价", "元/hm²"),
    "market_price_yuan_per_ha": ("市场价格", "元/hm²"),
    "annual_cap_ha": ("年度交易总量上限", "hm²"),
    "cap_binding": ("总量上限是否起约束作用", ""),
    "uncapped_traded_ha": ("不设上限时的成交量", "hm²"),
    "unmet_demand_ha": ("未满足的需求", "hm²"),
    "unsold_supply_ha": ("未售出的供给", "hm²"),
    "traded_city_ha": ("市内成交量", "hm²"),
    "traded_province_ha": ("省内跨市成交量", "hm²"),
    "traded_region_ha": ("跨省（全研究区）成交量", "hm²"),
    "n_trades": ("交易笔数", "笔"),
    "n_buyers_unmet": ("需求未完全满足的县数", "个"),
    "uncertainty_draws": ("抽样次数", "次"),
    "uncertainty_seed": ("随机种子", ""),
}
_CORE = (
    "sf_base_ha",
    "sf_target_ha",
    "baseline_ha",
    "static_voucher_ha",
    "demand_ha",
    "supply_ha",
    "net_ha",
    "demand_value_yuan",
    "supply_value_yuan",
    "n_counties",
    "n_demand",
    "n_supply",
    "n_balanced",
)
_MARKET = (
    "traded_ha",
    "traded_value_yuan",
    "price_yuan_per_ha",
    "floor_price_yuan_per_ha",
    "market_price_yuan_per_ha",
    "annual_cap_ha",
    "cap_binding",
    "uncapped_traded_ha",
    "unmet_demand_ha",
    "unsold_supply_ha",
    "n_trades",
    "n_buyers_unmet",
)

#: labels of the report-only county columns (the GeoPackage columns take their aliases)
EXTRA_COLUMNS = {
    "rank": "名次",
    "area_ha": "县域面积 (hm²)",
    "e_over_area": "|E| ÷ 县域面积",
}

#: short labels for the HTML page's county tables (the CSV/XLSX keep the full aliases)
SHORT_LABELS = {
    "county_id": "代码",
    "name": "县级行政区",
    "province": "省",
    "city": "市",
    "rank": "名次",
    "voucher_ha": "生态券 E (hm²)",
    "static_voucher_ha": "ΔM (hm²)",
    "gdp_coef": "Gₜ",
    "pop_coef": "Pₜ",
    "value_yuan": "交易价值 Qₜ (元)",
    "area_ha": "县域面积 (hm²)",
    "e_over_area": "|E| ÷ 面积",
}


def years_text(text: str, years: tuple[str, str]) -> str:
    return text.replace("{b}", years[0]).replace("{t}", years[1])


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------
def county_columns(columns: Iterable[str], aliases: dict, years: tuple[str, str]) -> list[Column]:
    """Columns of a county table: label from the GeoPackage's aliases (``aliases``: key →
    (label, description), as ``styling.FIELDS['county_vouchers']``) or :data:`EXTRA_COLUMNS`."""
    out = []
    for key in columns:
        if key in aliases:
            label = years_text(aliases[key][0], years)
        else:
            label = EXTRA_COLUMNS.get(key, key)
        kind = "text" if key == "county_id" else kind_of(key)
        out.append(Column(key, label, kind, SHORT_LABELS.get(key, "")))
    return out


def _with_roles(df: pd.DataFrame) -> pd.DataFrame:
    if "role" in df:
        df = df.assign(role=df["role"].map(lambda r: ROLE_LABELS.get(r, r)))
    return df


def display_tables(
    counties: pd.DataFrame,
    totals: dict[str, float],
    years: tuple[str, str],
    aliases: dict,
    class_areas: pd.DataFrame | None = None,
    transitions: pd.DataFrame | None = None,
    trades: pd.DataFrame | None = None,
    coefficients: dict[int, float] | None = None,
    legend_k: dict[str, dict[str, float]] | None = None,
) -> dict[str, Shown]:
    """Every table of the report by name, in the order of the XLSX sheets. ``coefficients``: k
    per RESDC code; ``legend_k``: k per legend and code (as text) when the land use uses other
    legends (then the land-use and coefficient tables name the legend, and the transfer matrix
    is between the land-use groups when two legends meet)."""
    _b, _t = years
    counties = pd.DataFrame(counties.drop(columns="geometry", errors="ignore"))
    out: dict[str, Shown] = {}
    cols = list(counties.columns)
    out["county_vouchers"] = Shown(
        "county_vouchers",
        "县级生态券",
        "县级生态券（全部县）",
        county_columns(cols, aliases, years),
        _with_roles(counties)[cols],
    )
    out["region_totals"] = _totals_table(
        totals, years, _CORE, "region_totals", "区域汇总", "区域汇总"
    )

    order = counties.sort_values(["voucher_ha", "county_id"], kind="stable")
    show = [
        c
        for c in (
            "county_id",
            "name",
            "province",
            "city",
            "voucher_ha",
            "static_voucher_ha",
            "gdp_coef",
            "pop_coef",
            "value_yuan",
        )
        if c in counties
    ]
    demand = order[order["voucher_ha"] < 0].head(TOP_N)
    supply = order[order["voucher_ha"] > 0].iloc[::-1].head(TOP_N)
    for name, sheet, df in (
        ("top10_demand", "需求前十", demand),
        ("top10_supply", "供给前十", supply),
    ):
        frame = df[show].reset_index(drop=True)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        out[name] = Shown(name, sheet, "", county_columns(["rank", *show], aliases, years), frame)

    other = other_legends(class_areas)
    if class_areas is not None and len(class_areas):
        out["land_use_by_class"] = (
            _land_use_table_by_legend(class_areas, years, legend_k or {})
            if other
            else _land_use_table(class_areas, years, coefficients or {})
        )
    if transitions is not None and len(transitions):
        out["transitions_by_class"] = _transition_matrix(transitions, years)
    if trades is not None and len(trades):
        out["trades"] = _trades_table(trades, aliases_trades=None)
    if any(k in totals for k in _MARKET):
        out["market"] = _totals_table(totals, years, _MARKET, "market", "交易市场", "交易市场汇总")
    if "demand_ha_p50" in totals:
        out["uncertainty"] = _uncertainty_table(totals)
    k = coefficients or {}
    if other:
        out["coefficients"] = _coefficients_by_legend(legend_k or {})
        return out
    out["coefficients"] = Shown(
        "coefficients",
        "标准林系数",
        "标准林系数 k",
        [
            Column("class_code", "地类代码", "text"),
            Column("class_name", "地类名称"),
            Column("k", "标准林系数 k", "coef"),
        ],
        pd.DataFrame(
            {
                "class_code": [str(c) for c in k],
                "class_name": [_class_name(c) for c in k],
                "k": list(k.values()),
            }
        ),
    )
    return out


def _totals_table(totals, years, keys, name, sheet, caption) -> Shown:
    rows = []
    for key in keys:
        if key not in totals or totals[key] is None:
            continue
        value = float(totals[key])
        if not math.isfinite(value):
            continue
        label, unit = SUMMARY_LABELS.get(key, (key, ""))
        # 1 万 hm² = 10⁴ hm²; 1 亿元 = 10⁸ yuan
        big = value / 1e4 if unit == "hm²" else (value / 1e8 if unit == "元" else np.nan)
        rows.append(
            {
                "label": years_text(label, years),
                "value": value,
                "unit": unit,
                "big": big,
                "kind": kind_of(key),
                "key": key,
            }
        )
    frame = pd.DataFrame(rows, columns=["label", "value", "unit", "big", "kind", "key"])
    shown = Shown(
        name,
        sheet,
        caption,
        [
            Column("label", "指标"),
            Column("value", "数值", "mixed"),
            Column("unit", "单位"),
            Column("big", "万 hm² / 亿元", "ha"),
            Column("key", "键"),
        ],
        frame,
    )
    return shown


def _uncertainty_table(totals: dict[str, float]) -> Shown:
    rows = []
    for key, label, unit in (
        ("demand_ha", "生态券需求量", "hm²"),
        ("supply_ha", "生态券供给量", "hm²"),
        ("net_ha", "净需求", "hm²"),
        ("demand_value_yuan", "需求价值", "元"),
        ("supply_value_yuan", "供给价值", "元"),
        ("net_value_yuan", "净需求价值", "元"),
    ):
        if f"{key}_p50" not in totals:
            continue
        det = totals.get(key)
        if det is None and key == "net_value_yuan" and "demand_value_yuan" in totals:
            det = totals["demand_value_yuan"] - totals.get("supply_value_yuan", 0.0)
        rows.append(
            {
                "label": label,
                "unit": unit,
                "det": det,
                "p05": totals[f"{key}_p05"],
                "p50": totals[f"{key}_p50"],
                "p95": totals[f"{key}_p95"],
                "key": key,
            }
        )
    frame = pd.DataFrame(rows, columns=["label", "unit", "det", "p05", "p50", "p95", "key"])
    return Shown(
        "uncertainty",
        "不确定性",
        "区域合计的不确定性（蒙特卡洛）",
        [
            Column("label", "指标"),
            Column("unit", "单位"),
            Column("det", "确定性结果", "yuan"),
            Column("p05", "第5百分位", "yuan"),
            Column("p50", "中位数", "yuan"),
            Column("p95", "第95百分位", "yuan"),
            Column("key", "键"),
        ],
        frame,
    )


def _class_name(code: object) -> str:
    try:
        return RESDC_CLASSES.get(int(code), str(code))
    except (TypeError, ValueError):
        return str(code)


def _level1(code: object) -> int | None:
    try:
        return int(code) // 10
    except (TypeError, ValueError):
        return None


def _land_use_table(ca: pd.DataFrame, years: tuple[str, str], k: dict[int, float]) -> Shown:
    """The land-use table of RESDC land use: one row per code, with its level-1 class."""

    def describe(code: object) -> tuple[str, str, float]:
        kk = k.get(int(code), 0.0) if str(code).isdigit() else 0.0
        return _class_name(code), LEVEL1.get(_level1(code) or -1, ""), kk

    return _land_use_rows(ca, ["class_code"], years, describe, Column("level1", "一级类"))


def other_legends(class_areas: pd.DataFrame | None) -> bool:
    """Whether the land use uses a legend other than RESDC (then tables say which)."""
    ca = class_areas
    return ca is not None and "legend" in ca.columns and set(ca["legend"].dropna()) != {"resdc"}


def _class_info(tag: str, code: object) -> tuple[str, str]:
    """(name, group in Chinese) of a class of a shipped legend; ("", "") for one of the user's."""
    from pipeline.settings.legends import GROUP_NAMES_ZH, SHIPPED, load_legend

    if tag not in SHIPPED:
        return "", ""
    legend = load_legend(tag)
    try:
        cls = legend.classes.get(str(code) if legend.text else int(code))
    except (TypeError, ValueError):
        cls = None
    if cls is None:
        return "", ""
    return (cls.name_zh or cls.name), GROUP_NAMES_ZH[cls.group]


def _land_use_table_by_legend(
    ca: pd.DataFrame, years: tuple[str, str], legend_k: dict[str, dict[str, float]]
) -> Shown:
    """The land-use table when a legend other than RESDC is used: one row per legend and code."""

    def describe(tag: str, code: str) -> tuple[str, str, float]:
        return (*_class_info(tag, code), legend_k.get(tag, {}).get(code, 0.0))

    ca = ca.assign(class_code=ca["class_code"].astype(str))
    return _land_use_rows(
        ca,
        ["legend", "class_code"],
        years,
        describe,
        Column("group", "大类"),
        Column("legend", "图例"),
    )


def _land_use_rows(ca, index, years, describe, group: Column, *lead: Column) -> Shown:
    """Areas of each class (``index``: class_code, or legend and class_code) in the two years,
    their change and standard-forest areas; ``describe(*index values)`` gives (name, group, k);
    ``lead``: columns of the index before the code."""
    pivot = ca.pivot_table(index=index, columns="year", values="area_ha", aggfunc="sum")
    pivot = pivot.fillna(0.0)
    pivot.columns = [str(c) for c in pivot.columns]
    b, t = years
    a0 = pivot[b].to_numpy() if b in pivot else np.zeros(len(pivot))
    at = pivot[t].to_numpy() if t in pivot else np.zeros(len(pivot))
    keys = [key if isinstance(key, tuple) else (key,) for key in pivot.index]
    info = [describe(*key) for key in keys]
    kk = np.array([i[2] for i in info], dtype=float)
    frame = pd.DataFrame(
        {
            **{c.key: [key[n] for key in keys] for n, c in enumerate(lead)},
            "class_code": [str(key[-1]) for key in keys],
            "class_name": [i[0] for i in info],
            group.key: [i[1] for i in info],
            "k": kk,
            "area_base_ha": a0,
            "area_target_ha": at,
            "change_ha": at - a0,
            "sf_base_ha": a0 * kk,
            "sf_target_ha": at * kk,
        }
    )
    columns = [
        *lead,
        Column("class_code", "地类代码"),
        Column("class_name", "地类名称"),
        group,
        Column("k", "标准林系数 k", "coef"),
        Column("area_base_ha", f"{b}年面积 (hm²)", "ha"),
        Column("area_target_ha", f"{t}年面积 (hm²)", "ha"),
        Column("change_ha", "面积变化 (hm²)", "ha"),
        Column("sf_base_ha", f"{b}年标准林面积 (hm²)", "ha"),
        Column("sf_target_ha", f"{t}年标准林面积 (hm²)", "ha"),
    ]
    return Shown(
        "land_use_by_class",
        "土地利用结构",
        f"各地类面积与标准林面积（{b}年、{t}年）",
        columns,
        frame,
    )


def _coefficients_by_legend(legend_k: dict[str, dict[str, float]]) -> Shown:
    rows = [(tag, c, _class_info(tag, c)[0], v) for tag, ks in legend_k.items()
            for c, v in ks.items()]  # fmt: skip
    return Shown(
        "coefficients", "标准林系数", "标准林系数 k",
        [Column("legend", "图例"), Column("class_code", "地类代码"),
         Column("class_name", "地类名称"), Column("k", "标准林系数 k", "coef")],
        pd.DataFrame(rows, columns=["legend", "class_code", "class_name", "k"]),
    )  # fmt: skip


def _transition_matrix(tr: pd.DataFrame, years: tuple[str, str]) -> Shown:
    """Region-wide transfer matrix between level-1 classes (hm²): rows = base year, columns =
    target year, with row and column totals; cells below 1e-6 hm² are left blank. With two
    legends, their classes meet only in their groups: the matrix is then between groups."""
    b, t = years
    if "from_legend" in tr.columns:
        from pipeline.settings.legends import GROUP_NAMES_ZH, GROUPS

        f, to = tr["from_group"], tr["to_group"]
        order = [g for g in (*GROUPS, "no data") if g in set(f) | set(to)]
        label = {**GROUP_NAMES_ZH, "no data": "无数据"}
        return _matrix(
            f, to, tr, order, label, years,
            f"土地利用转移矩阵（大类，{b}→{t}年，hm²）",
            "两期图例不同，按大类汇总。小于 10⁻⁶ hm² 的格子是数值取整的残差，表中留空。",
        )  # fmt: skip
    f = tr["from_code"].map(_level1)
    to = tr["to_code"].map(_level1)
    both = f.notna() & to.notna()
    order = sorted(set(f[both]) | set(to[both]))
    label = {c: LEVEL1.get(int(c), "无数据" if int(c) == 0 else str(c)) for c in order}
    return _matrix(
        f, to, tr, order, label, years,
        f"土地利用转移矩阵（一级类，{b}→{t}年，hm²）",
        "小于 10⁻⁶ hm² 的格子是数值取整的残差，不是实际土地，表中留空。",
        key=lambda c: f"to_{int(c)}",
    )  # fmt: skip


def _matrix(f, to, tr, order, label, years, title, note, key=lambda c: f"to_{c}") -> Shown:
    """The transfer matrix of ``tr``'s areas from ``f`` to ``to`` (rows and columns in ``order``,
    named by ``label``) with row and column totals, as a display table."""
    b, t = years
    m = (
        pd.DataFrame({"f": f, "t": to, "a": tr["area_ha"].astype(float)})
        .dropna(subset=["f", "t"])
        .pivot_table(index="f", columns="t", values="a", aggfunc="sum")
        .reindex(index=order, columns=order)
        .fillna(0.0)
    )
    frame = pd.DataFrame({"from": [f"{b}年 {label[c]}" for c in order]})
    columns = [Column("from", "转出 \\ 转入 (hm²)")]
    for c in order:
        frame[key(c)] = m[c].to_numpy()
        columns.append(Column(key(c), f"{t}年 {label[c]}", "ha"))
    frame["row_total"] = m.sum(axis=1).to_numpy()
    columns.append(Column("row_total", f"{b}年合计", "ha"))
    total = {"from": f"{t}年合计", **{k.key: frame[k.key].sum() for k in columns[1:]}}
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
    return Shown(
        "transitions_by_class", "土地利用转移", title, columns, frame,
        sliver_columns=tuple(c.key for c in columns[1:]), note=note,
    )  # fmt: skip


def _trades_table(trades: pd.DataFrame, aliases_trades=None) -> Shown:
    df = pd.DataFrame(trades.drop(columns="geometry", errors="ignore")).reset_index(drop=True)
    df.insert(0, "n", range(1, len(df) + 1))
    if "level" in df:
        df["level"] = df["level"].map(lambda v: LEVEL_LABELS.get(v, v))
    labels = {
        "n": "序号",
        "seller_id": "卖方代码",
        "seller_name": "卖方",
        "buyer_id": "买方代码",
        "buyer_name": "买方",
        "volume_ha": "交易量 (hm²)",
        "price_yuan_per_ha": "成交价 (元/hm²)",
        "value_yuan": "交易额 (元)",
        "level": "撮合层级",
        "distance_km": "距离 (km)",
    }
    text = {"seller_id", "buyer_id", "seller_name", "buyer_name", "level"}
    columns = [Column(c, labels.get(c, c), "text" if c in text else kind_of(c)) for c in df.columns]
    return Shown("trades", "生态券交易", "生态券交易明细（按成交顺序）", columns, df)


# --------------------------------------------------------------------------------------------
# CSV and XLSX
# --------------------------------------------------------------------------------------------
