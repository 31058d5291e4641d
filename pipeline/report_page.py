"""The tables and the HTML page of the report, from the GeoPackage's layers.

Public: :class:`Column`, :class:`Shown` (a table as people read it: Chinese labels, the column key
kept as a tooltip in HTML and in brackets in CSV/XLSX, each column with a display kind of
:mod:`pipeline.numbers`), :func:`display_tables` (every table of the report), :func:`write_tables`
(CSV + XLSX), :func:`render_html` (the page, from the editable Jinja2 template
``pipeline/templates/report.html.j2``) and :func:`uncertainty_figure`.

Libraries: Jinja2 for the page (a person can edit the template without touching Python),
XlsxWriter for the workbook (``constant_memory``; measured against the former hand-written writer
with ``scripts/benchmark_xlsx.py``: 0.56 s against 0.22 s on national-sized tables, 0.34 s or
~2.6 % of a ~13 s national run, under the 5 % that would justify keeping our own), fontTools to
embed a subset of the CJK font the figures use, so that the page reads on a machine with no CJK
font installed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib.util
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.codes import RESDC_CLASSES
from pipeline.numbers import XLSX_FORMATS, display, kind_of, rounded

__all__ = [
    "ROLE_LABELS",
    "SUMMARY_LABELS",
    "Column",
    "Shown",
    "cjk_font_file",
    "display_tables",
    "render_html",
    "uncertainty_figure",
    "write_tables",
]

TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"
#: the CJK fonts the page names, in order; an embedded subset of the figures' font follows them
FONT_STACK = (
    '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", '
    '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", "SimHei", '
    '"EcoVoucher CJK", sans-serif'
)
TOP_N = 10
#: cells of display tables below this many hm² are rounding slivers, not land (left blank)
SLIVER_HA = 1e-6
#: at most this many trades are listed in the HTML (all of them are in the CSV and XLSX)
TRADES_SHOWN = 60

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

#: county columns the GeoPackage's aliases do not name (Monte Carlo), label and description
EXTRA_COLUMNS = {
    "voucher_ha_p05": "生态券 E 第5百分位 (hm²)",
    "voucher_ha_p50": "生态券 E 中位数 (hm²)",
    "voucher_ha_p95": "生态券 E 第95百分位 (hm²)",
    "p_demand": "为需求方的概率",
    "value_yuan_p05": "交易价值 Qₜ 第5百分位 (元)",
    "value_yuan_p50": "交易价值 Qₜ 中位数 (元)",
    "value_yuan_p95": "交易价值 Qₜ 第95百分位 (元)",
    "rank": "名次",
    "area_ha": "县域面积 (hm²)",
    "e_over_area": "|E| ÷ 县域面积",
}

#: short labels for the HTML page's county tables (the CSV/XLSX keep the full aliases)
_COUNTY_LABEL = {
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

#: provenance keys of the summary, in Chinese
PROVENANCE_LABELS = {
    "software": "软件版本",
    "command": "运行命令",
    "started_utc": "开始时间 (UTC)",
    "finished_utc": "完成时间 (UTC)",
    "engine": "计算引擎",
    "catalog": "数据目录文件",
    "config": "配置文件",
    "config_text": "配置文件内容",
    "coefficients": "标准林系数文件",
    "coefficients_k": "所用标准林系数 k",
    "equal_area_crs": "等积投影",
    "data_notes": "数据说明",
}


@dataclass(frozen=True)
class Column:
    key: str  # the column's name in the GeoPackage or a stable name of our own
    label: str  # what a person reads (Chinese)
    kind: str = "text"  # display kind (pipeline.numbers)
    short: str = ""  # a shorter label for the HTML page, where the columns must fit A4

    @property
    def header(self) -> str:
        """CSV/XLSX header: the label with the key in brackets."""
        return f"{self.label} [{self.key}]" if self.key != self.label else self.label


@dataclass
class Shown:
    """One table as people read it; ``frame`` holds full-precision values, rounded on output."""

    name: str  # file stem and id
    sheet: str  # XLSX sheet name (Chinese)
    caption: str
    columns: list[Column]
    frame: pd.DataFrame  # one column per Column, in order
    note: str = ""
    sliver_columns: tuple[str, ...] = field(default_factory=tuple)  # hm² cells blanked < 1e-6

    def cells(self) -> pd.DataFrame:
        """The rounded values (what CSV and XLSX hold): slivers blanked, numbers rounded."""
        out = {}
        for col in self.columns:
            values = self.frame[col.key]
            if col.key in self.sliver_columns:
                values = values.where(values.abs() >= SLIVER_HA)
            if col.kind == "text":
                out[col.header] = values
            elif col.kind == "count":
                out[col.header] = pd.array(
                    [rounded(v, "count") if _real(v) else pd.NA for v in values], dtype="Int64"
                )
            else:
                out[col.header] = [rounded(v, col.kind) if _real(v) else np.nan for v in values]
        return pd.DataFrame(out)


def _real(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v))


def _years_text(text: str, years: tuple[str, str]) -> str:
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
            label = _years_text(aliases[key][0], years)
        else:
            label = EXTRA_COLUMNS.get(key, key)
        kind = "text" if key == "county_id" else kind_of(key)
        out.append(Column(key, label, kind, _COUNTY_LABEL.get(key, "")))
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
) -> dict[str, Shown]:
    """Every table of the report by name, in the order of the XLSX sheets."""
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

    if class_areas is not None and len(class_areas):
        out["land_use_by_class"] = _land_use_table(class_areas, years, coefficients or {})
    if transitions is not None and len(transitions):
        out["transitions_by_class"] = _transition_matrix(transitions, years)
    if trades is not None and len(trades):
        out["trades"] = _trades_table(trades, aliases_trades=None)
    if any(k in totals for k in _MARKET):
        out["market"] = _totals_table(totals, years, _MARKET, "market", "交易市场", "交易市场汇总")
    if "demand_ha_p50" in totals:
        out["uncertainty"] = _uncertainty_table(totals)
    k = coefficients or {}
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
                "label": _years_text(label, years),
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
    pivot = ca.pivot_table(index="class_code", columns="year", values="area_ha", aggfunc="sum")
    pivot = pivot.fillna(0.0)
    pivot.columns = [str(c) for c in pivot.columns]
    b, t = years
    a0 = pivot[b].to_numpy() if b in pivot else np.zeros(len(pivot))
    at = pivot[t].to_numpy() if t in pivot else np.zeros(len(pivot))
    codes = list(pivot.index)
    kk = np.array([k.get(int(c), 0.0) if str(c).isdigit() else 0.0 for c in codes])
    frame = pd.DataFrame(
        {
            "class_code": [str(c) for c in codes],
            "class_name": [_class_name(c) for c in codes],
            "level1": [LEVEL1.get(_level1(c) or -1, "") for c in codes],
            "k": kk,
            "area_base_ha": a0,
            "area_target_ha": at,
            "change_ha": at - a0,
            "sf_base_ha": a0 * kk,
            "sf_target_ha": at * kk,
        }
    )
    columns = [
        Column("class_code", "地类代码"),
        Column("class_name", "地类名称"),
        Column("level1", "一级类"),
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


def _transition_matrix(tr: pd.DataFrame, years: tuple[str, str]) -> Shown:
    """Region-wide transfer matrix between level-1 classes (hm²): rows = base year, columns =
    target year, with row and column totals; cells below 1e-6 hm² are left blank."""
    b, t = years
    f = tr["from_code"].map(_level1)
    to = tr["to_code"].map(_level1)
    m = (
        pd.DataFrame({"f": f, "t": to, "a": tr["area_ha"].astype(float)})
        .dropna(subset=["f", "t"])
        .pivot_table(index="f", columns="t", values="a", aggfunc="sum")
        .fillna(0.0)
    )
    codes = sorted(set(m.index) | set(m.columns))
    m = m.reindex(index=codes, columns=codes, fill_value=0.0)
    name = {c: LEVEL1.get(int(c), "无数据" if int(c) == 0 else str(c)) for c in codes}
    frame = pd.DataFrame({"from": [f"{b}年 {name[c]}" for c in codes]})
    columns = [Column("from", "转出 \\ 转入 (hm²)")]
    for c in codes:
        key = f"to_{int(c)}"
        frame[key] = m[c].to_numpy()
        columns.append(Column(key, f"{t}年 {name[c]}", "ha"))
    frame["row_total"] = m.sum(axis=1).to_numpy()
    columns.append(Column("row_total", f"{b}年合计", "ha"))
    total = {"from": f"{t}年合计", **{k.key: frame[k.key].sum() for k in columns[1:]}}
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
    return Shown(
        "transitions_by_class",
        "土地利用转移",
        f"土地利用转移矩阵（一级类，{b}→{t}年，hm²）",
        columns,
        frame,
        sliver_columns=tuple(c.key for c in columns[1:]),
        note="小于 10⁻⁶ hm² 的格子是数值取整的残差，不是实际土地，表中留空。",
    )


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
def write_tables(tables: dict[str, Shown], out_dir: Path) -> list[Path]:
    """``out_dir/tables/<name>.csv`` (UTF-8 with BOM, which Excel opens correctly) and
    ``out_dir/eco_vouchers_tables.xlsx`` (one sheet per table, number formats, frozen header)."""
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, shown in tables.items():
        path = folder / f"{name}.csv"
        _mixed_to_rounded(shown).to_csv(path, index=False, encoding="utf-8-sig")
        written.append(path)
    xlsx = Path(out_dir) / "eco_vouchers_tables.xlsx"
    _write_xlsx(xlsx, tables)
    written.append(xlsx)
    return written


def _mixed_to_rounded(shown: Shown) -> pd.DataFrame:
    """Cells, with a 'mixed' column (totals: one kind per row) rounded row by row."""
    cells = shown.cells()
    for col in shown.columns:
        if col.kind == "mixed":
            cells[col.header] = [
                rounded(v, k) for v, k in zip(shown.frame[col.key], shown.frame["kind"])
            ]
    return cells


def _write_xlsx(path: Path, tables: dict[str, Shown]) -> None:
    import datetime

    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    # fixed properties: the same tables give the same workbook
    wb.set_properties(
        {
            "title": "EcoVoucher 生态券核算表",
            "author": "ecovoucher",
            "created": datetime.datetime(2000, 1, 1),
        }
    )
    head = wb.add_format({"bold": True, "bg_color": "#F3F3F3", "border": 1, "text_wrap": True})
    formats = {kind: wb.add_format({"num_format": f}) for kind, f in XLSX_FORMATS.items()}
    for shown in tables.values():
        ws = wb.add_worksheet(shown.sheet[:31])
        cells = _mixed_to_rounded(shown)
        kinds = [c.kind for c in shown.columns]
        row_kinds = shown.frame["kind"].tolist() if "mixed" in kinds else None
        for c, col in enumerate(shown.columns):
            sample = [str(v) for v in shown.frame[col.key].head(50)]
            width = max(
                [len(col.header) * 1.6 if _has_cjk(col.header) else len(col.header)]
                + [len(s) * (1.8 if _has_cjk(s) else 1.1) for s in sample]
            )
            ws.set_column(c, c, min(max(width + 2, 8), 48))
        ws.freeze_panes(1, 0)
        ws.write_row(0, 0, [c.header for c in shown.columns], head)
        columns = [cells[c.header].tolist() for c in shown.columns]
        for r, row in enumerate(zip(*columns), start=1):
            for c, v in enumerate(row):
                kind = kinds[c]
                if kind == "mixed":
                    kind = row_kinds[r - 1]
                if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
                    continue
                if kind != "text" and isinstance(v, (int, float, np.integer, np.floating)):
                    ws.write_number(r, c, float(v), formats.get(kind))
                else:
                    ws.write_string(r, c, str(v))
    wb.close()


def _has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------
def html_table(shown: Shown | None, *, limit: int | None = None, id: str = "") -> dict | None:
    """The template's view of a table: labels, keys as tooltips, numbers as display text."""
    if shown is None or not len(shown.frame):
        return None
    frame = shown.frame if limit is None else shown.frame.head(limit)
    columns = [c for c in shown.columns if c.key != "key"]  # the summary key is the tooltip
    rows = []
    for i in range(len(frame)):
        rec = frame.iloc[i]
        cells = []
        for c in columns:
            v = rec[c.key]
            kind = rec["kind"] if c.kind == "mixed" else c.kind
            if c.key in shown.sliver_columns and _real(v) and abs(float(v)) < SLIVER_HA:
                v = None
            if c.key == "value" and rec.get("key") == "cap_binding":
                cells.append({"text": "是" if v else "否", "numeric": False})
                continue
            text = display(v, kind) if kind != "text" else ("" if _missing(v) else str(v))
            cells.append(
                {
                    "text": text,
                    "numeric": kind != "text",
                    "title": rec["key"] if c.key == "label" and "key" in rec else None,
                    "wrap": kind == "text" and len(text) > 40,
                }
            )
        rows.append({"cells": cells})
    note = shown.note
    if limit is not None and len(shown.frame) > limit:
        note = (note + " " if note else "") + (
            f"仅列出前 {limit} 条，共 {len(shown.frame)} 条；全部见 tables/{shown.name}.csv。"
        )
    return {
        "id": id or shown.name,
        "caption": shown.caption,
        "columns": [
            {"label": c.short or c.label, "key": c.key, "numeric": c.kind != "text"}
            for c in columns
        ],
        "rows": rows,
        "note": note,
    }


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v))


def render_html(context: dict, template: Path = TEMPLATE) -> str:
    """The page from ``template`` (Jinja2, autoescaped), with the CJK subset font embedded: it
    is rendered once to learn which characters it uses, then again with the font."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.parent)),
        autoescape=True,
        trim_blocks=False,
        lstrip_blocks=False,
    )
    page = env.get_template(template.name)
    context = {"font_face": "", "font_stack": jinja2.utils.markupsafe.Markup(FONT_STACK), **context}
    first = page.render(**context)
    face = _font_face(first)
    if not face:
        return first
    return page.render(**{**context, "font_face": jinja2.utils.markupsafe.Markup(face)})


def cjk_font_file() -> Path | None:
    """The Noto Sans CJK SC file shipped in ``mplfonts`` (the figures' font), if installed."""
    spec = importlib.util.find_spec("mplfonts")  # locate without importing (it sets rcParams)
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "fonts" / "NotoSansCJKsc-Regular.otf"
            if candidate.is_file():
                return candidate
    return None


def _font_face(page: str) -> str:
    """An @font-face rule with a subset of the CJK font holding every non-ASCII character of
    ``page`` (and ASCII), embedded as base64; '' when the font or fontTools is missing."""
    font = cjk_font_file()
    if font is None:
        return ""
    try:
        data = _subset(font, frozenset(ch for ch in page if ord(ch) > 0x7E))
    except Exception:  # a broken font file must not cost the report
        return ""
    b64 = base64.b64encode(data).decode("ascii")
    return (
        '@font-face { font-family: "EcoVoucher CJK"; font-display: swap; '
        f'src: url(data:font/otf;base64,{b64}) format("opentype"); }}'
    )


@functools.lru_cache(maxsize=4)
def _subset(font: Path, chars: frozenset[str]) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    text = "".join(sorted(chars)) + "".join(chr(c) for c in range(0x20, 0x7F))
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    tt = TTFont(str(font), lazy=True)
    sub = subset.Subsetter(options)
    sub.populate(text=text)
    sub.subset(tt)
    buf = io.BytesIO()
    tt.save(buf)
    return buf.getvalue()


def uncertainty_figure(table: Shown, rc: dict, path: Path) -> Path | None:
    """A small figure of the p05–p95 ranges of demand, supply and net (万 hm²), with the median
    and the deterministic value; written to ``path`` (PNG). None when nothing to draw."""
    frame = table.frame[table.frame["unit"] == "hm²"]
    if not len(frame):
        return None
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with rc_context(rc):
        fig = Figure(figsize=(6.4, 1.1 + 0.5 * len(frame)), dpi=150)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.2, 0.36, 0.76, 0.58))
        y = np.arange(len(frame))[::-1]
        # 1 万 hm² = 10⁴ hm²
        lo, mid, hi = (frame[c].to_numpy(float) / 1e4 for c in ("p05", "p50", "p95"))
        det = frame["det"].to_numpy(float) / 1e4
        ax.hlines(y, lo, hi, color="#2166ac", lw=6, alpha=0.35, label="第5–95百分位")
        ax.plot(mid, y, "o", color="#2166ac", ms=6, label="中位数")
        ax.plot(det, y, "|", color="#b2182b", ms=16, mew=2, label="确定性结果")
        ax.set_yticks(y, frame["label"].tolist())
        ax.set_xlabel("万 hm²")
        ax.axvline(0, color="#999", lw=0.6)
        ax.grid(axis="x", color="#ddd", lw=0.5)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.42), ncol=3, fontsize=8, frameon=False
        )
        fig.savefig(path, dpi=150, metadata={"Software": None})
    return path


def files_list(paths: Sequence[Path], out_dir: Path) -> list[str]:
    return [Path(os.path.relpath(p, out_dir)).as_posix() for p in paths]


def is_synthetic_demo(summary: pd.DataFrame) -> bool:
    """Whether the run read the synthetic demo data: an input file beside the demo's
    ``provenance.json`` (written by ``pipeline.demo.build_demo_data``), or catalog notes that
    begin with "DEMO DATA" (the shipped demo catalog and ``ecovoucher init``'s)."""
    import json

    if "key" not in summary or "text" not in summary:
        return False
    texts = dict(zip(summary["key"].astype(str), summary["text"]))
    notes = texts.get("data_notes")
    if isinstance(notes, str) and notes.lstrip().upper().startswith("DEMO DATA"):
        return True
    for key, text in texts.items():
        if not key.startswith("input_") or not isinstance(text, str):
            continue
        marker = Path(text.split(" sha256=")[0]).parent / "provenance.json"
        try:
            prov = json.loads(marker.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(prov, dict) and prov.get("title") == "EcoVoucher demo data set":
            return True
    return False


def page_context(
    *,
    counties: pd.DataFrame,
    summary: pd.DataFrame,
    tables: dict[str, Shown],
    years: tuple[str, str],
    figures: Sequence[tuple[Path, Path, str]],
    files: list[str],
    gpkg_name: str,
    config: dict,
    uncertainty_png: Path | None = None,
) -> dict:
    """Everything the template shows, numbers already written for people."""
    b, t = years
    texts = (
        dict(zip(summary["key"].astype(str), summary["text"]))
        if {"key", "text"} <= set(summary)
        else {}
    )
    totals = tables["region_totals"].frame.set_index("key")["value"].to_dict()
    e = counties["voucher_ha"].to_numpy(float)
    headline = []
    if {"demand_ha", "supply_ha", "net_ha"} <= set(totals):
        # 1 万 hm² = 10⁴ hm²
        headline = [
            {
                "label": "生态券需求量",
                "value": display(totals["demand_ha"] / 1e4),
                "unit": "万 hm²",
                "cls": "demand",
            },
            {
                "label": "生态券供给量",
                "value": display(totals["supply_ha"] / 1e4),
                "unit": "万 hm²",
                "cls": "supply",
            },
            {
                "label": "净需求",
                "value": display(totals["net_ha"] / 1e4),
                "unit": "万 hm²",
                "cls": "",
            },
            {
                "label": "需求方 / 供给方县数",
                "value": f"{display(totals.get('n_demand'), 'count')} / "
                f"{display(totals.get('n_supply'), 'count')}",
                "unit": "个",
                "cls": "",
            },
        ]
    net = totals.get("net_ha")
    headline_text = ""
    if net is not None:
        headline_text = (
            f"{b}—{t} 年，研究区整体需要{'购买' if net > 0 else '出售'}生态券 "
            f"{display(abs(net) / 1e4)} 万 hm²（需求 − 供给）；"
            f"标准林面积由 {display(totals.get('sf_base_ha', math.nan) / 1e4)} 万 hm² 变为 "
            f"{display(totals.get('sf_target_ha', math.nan) / 1e4)} 万 hm²。"
        )

    # how to read E: counties whose |E| exceeds their own area (1 km² = 100 hm²)
    area_ha = counties["area_km2"].to_numpy(float) * 100
    ratio = np.abs(e) / np.where(area_ha > 0, area_ha, np.nan)
    over = counties.assign(area_ha=area_ha, e_over_area=ratio)
    over = over[over["e_over_area"] > 1].sort_values("e_over_area", ascending=False)
    over_cols = [
        c
        for c in (
            "name",
            "province",
            "city",
            "voucher_ha",
            "area_ha",
            "e_over_area",
            "static_voucher_ha",
            "gdp_coef",
            "pop_coef",
        )
        if c in over
    ]
    over_shown = Shown(
        "e_over_area",
        "",
        f"|E| 大于自身面积的县（{len(over)} 个）",
        [
            Column(
                c,
                _COUNTY_LABEL.get(c) or EXTRA_COLUMNS.get(c, c),
                kind_of(c) if c != "e_over_area" else "coef",
            )
            for c in over_cols
        ],
        pd.DataFrame(over[over_cols]).reset_index(drop=True),
    )
    g, p = counties["gdp_coef"].to_numpy(float), counties["pop_coef"].to_numpy(float)
    read_e = {
        "g_range": f"{display(np.nanmin(g), 'coef')} 与 {display(np.nanmax(g), 'coef')} 之间",
        "p_range": f"{display(np.nanmin(p), 'coef')} 与 {display(np.nanmax(p), 'coef')} 之间",
        "n_over": len(over),
        "over": html_table(over_shown),
    }

    market = None
    if "market" in tables:
        m = totals_map = {**totals, **tables["market"].frame.set_index("key")["value"].to_dict()}
        binding = bool(m.get("cap_binding"))
        text = (
            f"按“先市内、再省内、最后全研究区”的顺序撮合，统一成交价 "
            f"{display(m.get('price_yuan_per_ha'), 'yuan')} 元/hm²。共成交 "
            f"{display(m.get('n_trades'), 'count')} 笔、{display(m.get('traded_ha'))} hm²，成交额 "
            f"{display(m.get('traded_value_yuan', math.nan) / 1e8)} 亿元。"
        )
        if m.get("annual_cap_ha") is not None and math.isfinite(float(m["annual_cap_ha"])):
            text += f"年度交易总量上限 {display(m['annual_cap_ha'])} hm²" + (
                f"<b>起了约束作用</b>：不设上限时可成交 {display(m.get('uncapped_traded_ha'))} hm²。"
                if binding
                else "，未起约束作用。"
            )
        text += (
            f"未满足的需求 {display(m.get('unmet_demand_ha'))} hm²"
            f"（{display(m.get('n_buyers_unmet'), 'count')} 个需求方县），"
            f"未售出的供给 {display(m.get('unsold_supply_ha'))} hm²。"
        )
        levels = Shown(
            "levels",
            "",
            "各撮合层级成交量",
            [Column("label", "层级"), Column("value", "成交量 (hm²)", "ha")],
            pd.DataFrame(
                [
                    {"label": "市内", "value": totals_map.get("traded_city_ha")},
                    {"label": "省内跨市", "value": totals_map.get("traded_province_ha")},
                    {"label": "跨省（全研究区）", "value": totals_map.get("traded_region_ha")},
                ]
            ),
        )
        from markupsafe import Markup

        market = {
            "text": Markup(text),  # built from display() numbers and fixed words only
            "facts": html_table(tables["market"]),
            "levels": html_table(levels),
            "trades": html_table(tables.get("trades"), limit=TRADES_SHOWN),
        }

    uncertainty = None
    if "uncertainty" in tables:
        draws = totals_raw(summary, "uncertainty_draws")
        seed = totals_raw(summary, "uncertainty_seed")
        uncertainty = {
            "text": (
                f"对标准林系数、全国参照值和价格在配置给定的范围内抽样 {display(draws, 'count')} 次"
                f"（随机种子 {'' if seed is None else int(seed)}），每次重算各县 E。下表给出区域合计的第5、50（中位数）"
                "和第95百分位：90% 的抽样结果落在第5与第95百分位之间。"
            ),
            "table": html_table(tables["uncertainty"]),
            "figure": (
                base64.b64encode(uncertainty_png.read_bytes()).decode("ascii")
                if uncertainty_png
                else None
            ),
            "caption": "区域生态券需求、供给与净需求的不确定性（万 hm²）：条为第5–95百分位，圆点为中位数，竖线为确定性结果。",
        }

    n = 5 + (market is not None) + (uncertainty is not None)
    national = config.get("national") or {}
    nat_rows = [
        {
            "year": str(y),
            "gdp": v.get("gdp_per_capita_yuan"),
            "density": v.get("population_density_per_km2"),
        }
        for y, v in sorted(national.items(), key=lambda kv: str(kv[0]))
        if isinstance(v, dict)
    ]
    nat = Shown(
        "national",
        "",
        "全国参照值",
        [
            Column("year", "年份"),
            Column("gdp", "全国人均 GDP (元)", "yuan"),
            Column("density", "全国人口密度 (人/km²)", "km"),
        ],
        pd.DataFrame(nat_rows, columns=["year", "gdp", "density"]),
    )
    prov_rows, prov_long = [], []
    for key, text in texts.items():
        if not isinstance(text, str) or key == "coefficients_k":
            continue
        label = PROVENANCE_LABELS.get(key) or _provenance_label(key)
        if key == "software":
            import json

            with contextlib.suppress(ValueError, AttributeError):
                text = "，".join(f"{k} {v}" for k, v in json.loads(text).items())
        if "\n" in text or len(text) > 300:
            prov_long.append({"key": key, "label": label, "text": text})
        else:
            prov_rows.append({"label": label, "text": text, "key": key, "kind": "text"})
    prov = Shown(
        "provenance",
        "",
        "",
        [Column("label", "项目"), Column("text", "内容")],
        pd.DataFrame(prov_rows, columns=["label", "text", "key", "kind"]),
    )
    price = config.get("price_yuan_per_ha")
    return {
        "demo": is_synthetic_demo(summary),
        "y0": b,
        "yt": t,
        "n_counties": display(len(counties), "count"),
        "gpkg_name": gpkg_name,
        "finished": _utc(texts.get("finished_utc")),
        "headline": headline,
        "headline_text": headline_text,
        "totals": html_table(tables["region_totals"]),
        "read_e": read_e,
        "figures": [
            {
                "b64": base64.b64encode(png.read_bytes()).decode("ascii"),
                "caption": caption,
                "png": png.name,
                "svg": svg.name,
            }
            for png, svg, caption in figures
        ],
        "top_n": TOP_N,
        "top_demand": html_table(tables.get("top10_demand")),
        "top_supply": html_table(tables.get("top10_supply")),
        "market": market,
        "uncertainty": uncertainty,
        "land_use": html_table(tables.get("land_use_by_class")),
        "transitions": html_table(tables.get("transitions_by_class")),
        "national": html_table(nat),
        "price": display(float(price), "yuan") if price is not None else "",
        "crs": texts.get("equal_area_crs") or "",
        "coefficients": html_table(tables.get("coefficients")),
        "provenance": html_table(prov),
        "provenance_long": prov_long,
        "files": files,
        "n_section": {"land_use": n, "method": n + 1, "provenance": n + 2, "files": n + 3},
    }


def _utc(stamp: object) -> str:
    """2026-12-04T16:17:20+00:00 → 2026-12-04 16:17:20 UTC."""
    if not isinstance(stamp, str) or not stamp:
        return ""
    return stamp.replace("T", " ").removesuffix("+00:00") + " UTC"


def _provenance_label(key: str) -> str:
    if key.startswith("input_"):
        return f"输入文件 {key.removeprefix('input_')}"
    if key.startswith("ingest_note_"):
        return f"读取说明 {key.removeprefix('ingest_note_')}"
    return key


def totals_raw(summary: pd.DataFrame, key: str) -> float | None:
    if not {"key", "value"} <= set(summary):
        return None
    hit = summary.loc[summary["key"] == key, "value"]
    return float(hit.iloc[0]) if len(hit) and pd.notna(hit.iloc[0]) else None
