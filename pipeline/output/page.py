"""report.html: the page a planner opens first, from the template
``pipeline/output/templates/report.html.j2`` (Jinja2: plain HTML with placeholders, for a person to
edit without touching Python).

Public: :func:`page_context` (every value the template shows, numbers already written by
:mod:`pipeline.numbers`), :func:`render_html`, :func:`html_table` (a :class:`~pipeline.output.
tables.Shown` as the template's tables), :func:`is_synthetic_demo` (the banner) and
:func:`uncertainty_figure`.

The page names the usual CJK fonts (Noto Sans CJK SC, Source Han Sans, PingFang, Microsoft YaHei,
WenQuanYi, SimHei) and embeds, after them, a subset of Noto Sans CJK SC (the figures' font, from
``mplfonts``) holding exactly the characters of the page (fontTools; ~85 KB for the demo), so it
reads on a machine with no CJK font at all. Print CSS: A4, a page break before each section, no
heading left at a page foot, table headers repeated on every page.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.numbers import display, kind_of
from pipeline.output.maps import cjk_font
from pipeline.output.tables import (
    EXTRA_COLUMNS,
    SHORT_LABELS,
    SLIVER_HA,
    TOP_N,
    Column,
    Shown,
    is_number,
)

__all__ = [
    "FONT_STACK",
    "TEMPLATE",
    "html_table",
    "is_synthetic_demo",
    "page_context",
    "render_html",
    "uncertainty_figure",
]

TEMPLATE = Path(__file__).parent / "templates" / "report.html.j2"
#: the CJK fonts the page names, in order; an embedded subset of the figures' font follows them
FONT_STACK = (
    '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", '
    '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", "SimHei", '
    '"EcoVoucher CJK", sans-serif'
)
#: at most this many trades are listed in the page (all of them are in the CSV and XLSX)
TRADES_SHOWN = 60

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
            if c.key in shown.sliver_columns and is_number(v) and abs(float(v)) < SLIVER_HA:
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


def _font_face(page: str) -> str:
    """An @font-face rule with a subset of the CJK font holding every non-ASCII character of
    ``page`` (and ASCII), embedded as base64; '' when the font or fontTools is missing."""
    font = cjk_font()
    if font is None:
        return ""
    chars = frozenset(ch for ch in page if ord(ch) > 0x7E)
    try:
        data = _cached_subset(font, chars)
    except Exception:  # a broken font file must not cost the report
        return ""
    b64 = base64.b64encode(data).decode("ascii")
    return (
        '@font-face { font-family: "EcoVoucher CJK"; font-display: swap; '
        f'src: url(data:font/otf;base64,{b64}) format("opentype"); }}'
    )


def font_cache() -> Path:
    """Where subsets are kept between runs: ``$XDG_CACHE_HOME/ecovoucher/fonts`` (default
    ``~/.cache``). A rerun on the same data uses the same characters and so the same subset
    (subsetting takes ~1 s; reading the cached one, ~0)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ecovoucher" / "fonts"


def _cached_subset(font: Path, chars: frozenset[str]) -> bytes:
    key = hashlib.sha256(
        f"{font.name}|{font.stat().st_size}|{''.join(sorted(chars))}".encode()
    ).hexdigest()[:24]
    path = font_cache() / f"{key}.otf"
    with contextlib.suppress(OSError):
        return path.read_bytes()
    data = _subset(font, chars)
    with contextlib.suppress(OSError):  # a read-only home only costs the next run the time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


@functools.lru_cache(maxsize=4)
def _subset(font: Path, chars: frozenset[str]) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    text = "".join(sorted(chars)) + "".join(chr(c) for c in range(0x20, 0x7F))
    options = subset.Options()
    # no OpenType layout features, hints or vertical metrics: a page needs none of them, and
    # they double the time (~1.8 → ~0.9 s) and the size (~156 → ~84 KB)
    options.layout_features = []
    options.hinting = False
    options.drop_tables += ["vhea", "vmtx", "VORG"]
    options.notdef_outline = True
    tt = TTFont(str(font), lazy=True, fontNumber=0 if font.suffix.lower() == ".ttc" else -1)
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
                SHORT_LABELS.get(c) or EXTRA_COLUMNS.get(c, c),
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
