"""VEP outputs: vep.gpkg, the two CSVs and the report echoed to the terminal; :func:`run_vep`."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.numbers import kind_of, rounded
from pipeline.runtime.staging import check_out_dir, staged_output
from pipeline.vep.compute import (
    ItemResult,
    VepResult,
    compute_items,
    money_text,
    rate_sensitivity,
    sum_yuan,
    total_yuan,
)
from pipeline.vep.config import LoadedConfig, load_vep_config

_GPKG_NAME = "vep.gpkg"
_ITEMS_CSV = "vep_items.csv"
_SENSITIVITY_CSV = "vep_sensitivity.csv"
#: what a VEP run writes in its output folder: name → whether it is a folder
OUTPUT_ENTRIES = {_GPKG_NAME: False, _ITEMS_CSV: False, _SENSITIVITY_CSV: False}
#: Chinese headers of the CSVs (the column key follows in brackets); values rounded to the fen
_CSV_LABELS = {
    "item": "序号",
    "name": "生态产品",
    "category": "类别",
    "method": "核算方法",
    "rate": "还原利率 r",
    "years": "收益年限 n",
    "p_yuan": "收益现值 P (元)",
    "p_prime_yuan": "无生态产品时的收益 P′ (元)",
    "vep_yuan": "生态产品价值 V = P − P′ (元)",
    "p_10k_yuan": "P (万元)",
    "p_prime_10k_yuan": "P′ (万元)",
    "vep_10k_yuan": "V (万元)",
    "formula": "计算式",
    "note": "说明",
    "rate_r_minus_1pp": "利率 r − 1 个百分点",
    "rate_r": "利率 r",
    "rate_r_plus_1pp": "利率 r + 1 个百分点",
    "vep_yuan_r_minus_1pp": "V (元)，r − 1 个百分点",
    "vep_yuan_r": "V (元)，r",
    "vep_yuan_r_plus_1pp": "V (元)，r + 1 个百分点",
    "vep_10k_yuan_r_minus_1pp": "V (万元)，r − 1 个百分点",
    "vep_10k_yuan_r": "V (万元)，r",
    "vep_10k_yuan_r_plus_1pp": "V (万元)，r + 1 个百分点",
}


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _items_frame(results: list[ItemResult]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": [r.index for r in results],
            "name": [r.name for r in results],
            "category": [r.category for r in results],
            "method": [r.method for r in results],
            "rate": pd.Series([r.rate for r in results], dtype="float64"),
            "years": pd.Series([r.years for r in results], dtype="Int64"),
            "p_yuan": [r.p_yuan for r in results],
            "p_prime_yuan": [r.p_prime_yuan for r in results],
            "vep_yuan": [r.vep_yuan for r in results],
            "p_10k_yuan": [r.p_10k_yuan for r in results],
            "p_prime_10k_yuan": [r.p_prime_10k_yuan for r in results],
            "vep_10k_yuan": [r.vep_10k_yuan for r in results],
            "formula": [r.formula for r in results],
            "note": [r.note or "" for r in results],
        }
    )


def _site_frame(loaded: LoadedConfig, results: list[ItemResult], total: float) -> Any:
    import geopandas as gpd

    from pipeline import __version__

    site = loaded.config.site
    attrs = {
        "name": [site.name or Path(loaded.source.removeprefix("VEP config ")).stem],
        "n_items": [len(results)],
        "p_yuan": [sum_yuan(r.p_yuan for r in results)],
        "p_prime_yuan": [sum_yuan(r.p_prime_yuan for r in results)],
        "vep_yuan": [total],
        "vep_10k_yuan": [total / 1e4],
        "config": [str(loaded.source.removeprefix("VEP config "))],
        "software": [f"ecovoucher {__version__}"],
        "created_utc": [datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")],
    }
    if loaded.site_geometry is None:
        return pd.DataFrame(attrs)
    return gpd.GeoDataFrame(attrs, geometry=[loaded.site_geometry], crs=loaded.site_crs)


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The CSV of a VEP table: Chinese header with the key in brackets, money rounded to the fen
    (rates kept as given: they are inputs). Full precision stays in vep.gpkg."""
    out = {}
    for key in frame.columns:
        kind = kind_of(key)
        values = frame[key]
        if kind in ("yuan", "ha") and pd.api.types.is_numeric_dtype(values):
            values = values.map(lambda v, k=kind: rounded(v, k))
        label = _CSV_LABELS.get(key, key)
        out[f"{label} [{key}]" if label != key else key] = values
    return pd.DataFrame(out)


def _write_outputs(folder: Path, items: pd.DataFrame, site: Any, sensitivity: pd.DataFrame) -> None:
    """Write every output into ``folder`` (the run's staging folder)."""
    import pyogrio

    pyogrio.write_dataframe(items, folder / _GPKG_NAME, layer="vep_items", driver="GPKG")
    pyogrio.write_dataframe(site, folder / _GPKG_NAME, layer="vep_site", driver="GPKG")
    _csv_frame(items).to_csv(folder / _ITEMS_CSV, index=False, encoding="utf-8-sig")
    _csv_frame(sensitivity).to_csv(folder / _SENSITIVITY_CSV, index=False, encoding="utf-8-sig")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(_width(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [_pad(cell, widths[c], c in right) for c, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def _echo_report(
    loaded: LoadedConfig,
    results: list[ItemResult],
    total: float,
    sensitivity: pd.DataFrame,
    echo: Callable[[str], None],
) -> None:
    site = loaded.config.site
    echo(f"VEP of {site.name or 'the site'} ({loaded.source})")
    for warning in loaded.warnings:
        echo(f"warning: {warning}")
    header = [
        "#",
        "category",
        "method",
        "name",
        "P (yuan)",
        "P' (yuan)",
        "V (yuan)",
        "V (10^4 yuan)",
    ]
    rows = [
        [
            str(r.index),
            r.category,
            r.method,
            r.name,
            money_text(r.p_yuan),
            money_text(r.p_prime_yuan),
            money_text(r.vep_yuan),
            money_text(r.vep_10k_yuan),
        ]
        for r in results
    ]
    rows.append(["", "total", "", "", "", "", money_text(total), money_text(total / 1e4)])
    lines = _table(header, rows, right={0, 4, 5, 6, 7})
    echo(lines[0])
    for r, line in zip(results, lines[1:-1], strict=True):
        echo(line)
        echo(f"    {r.formula}")
    echo(lines[-1])
    by_category: dict[str, float] = {}
    for r in results:
        by_category[r.category] = by_category.get(r.category, 0.0) + r.vep_yuan
    echo(
        "by category (10^4 yuan): "
        + ", ".join(f"{cat} {money_text(v / 1e4)}" for cat, v in by_category.items())
    )
    echo("sensitivity of V to the rate, 10^4 yuan (each item at its own r):")
    s_rows = []
    for rec in sensitivity.to_dict("records"):
        cells = [str(rec["item"]), str(rec["name"])]
        for label in ("r_minus_1pp", "r", "r_plus_1pp"):
            v = rec[f"vep_10k_yuan_{label}"]
            rate = rec[f"rate_{label}"]
            text = "n/a" if pd.isna(v) else money_text(v)
            if not pd.isna(rate):
                text += f" @{rate * 100:.2f}%"
            cells.append(text)
        s_rows.append(cells)
    for line in _table(["#", "name", "r - 1 pp", "r", "r + 1 pp"], s_rows, right={0, 2, 3, 4}):
        echo(line)


def run_vep(
    config_path: Path,
    out_dir: Path,
    *,
    echo: Callable[[str], None] = print,
    wait: float = 0.0,
) -> VepResult:
    """Value one site: read and check ``config_path``, write ``out_dir/vep.gpkg`` and the CSVs.

    Every problem of the config (and of the site file) is collected into one InputError before
    anything is written. The output folder is checked first, locked while the files are written
    (``wait``: seconds to wait for another run holding it) and changed in one step (see
    :mod:`pipeline.runtime.staging`): a failed run leaves an earlier output as it was.
    """
    config_path = Path(config_path)
    out_dir = check_out_dir(Path(out_dir), OUTPUT_ENTRIES)
    loaded = load_vep_config(config_path)
    results = compute_items(loaded.config)
    total = total_yuan(results)
    sensitivity = rate_sensitivity(loaded.config, results)
    with staged_output(out_dir, OUTPUT_ENTRIES, wait=wait) as tx:
        _write_outputs(
            tx.staging, _items_frame(results), _site_frame(loaded, results, total), sensitivity
        )
        tx.commit()
    gpkg, items_csv, sens_csv = (out_dir / n for n in (_GPKG_NAME, _ITEMS_CSV, _SENSITIVITY_CSV))
    _echo_report(loaded, results, total, sensitivity, echo)
    echo(f"wrote {gpkg}, {items_csv}, {sens_csv}")
    return VepResult(
        config=loaded.config,
        items=results,
        total_yuan=total,
        sensitivity=sensitivity,
        gpkg_path=gpkg,
        items_csv_path=items_csv,
        sensitivity_csv_path=sens_csv,
        warnings=list(loaded.warnings),
    )
