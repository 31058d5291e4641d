#!/usr/bin/env python
"""Time the report's XLSX writers on tables of a national run's size (issue 14, item 6).

Compares XlsxWriter in ``constant_memory`` mode with the hand-written writer that the project
used before (``pipeline/xlsx.py``, kept only as long as it saves more than 5 % of a national run,
~13 s with 2 workers). The tables have the national shapes: 2,848 counties × 27 columns (Chinese
text, floats, integers, missing values), the two top-10 tables, 26 land-use classes, the 7 × 8
level-1 transfer matrix, the coefficients and ~2,000 trades.

    .venv/bin/python scripts/benchmark_xlsx.py [--repeat 7]

Prints the median wall time of each writer (and the range). Run with the hand-written writer
present (e.g. on a commit before it was removed) to time it too; otherwise only XlsxWriter is
timed.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_COUNTIES = 2848
N_TRADES = 2000


def national_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = N_COUNTIES
    county = pd.DataFrame(
        {
            "县级行政区划代码 [county_id]": [f"{110101 + i}" for i in range(n)],
            "名称 [name]": [f"某某县{i}" for i in range(n)],
            "省 [province]": rng.choice(["河北省", "山西省", "内蒙古自治区"], n),
            "市 [city]": rng.choice(["石家庄市", "唐山市", "太原市", "呼和浩特市"], n),
        }
    )
    for j in range(19):
        county[f"数值列{j} [v{j}]"] = rng.normal(0, 1e4, n)
    county["供需角色 [role]"] = rng.choice(["需求方", "供给方", "平衡"], n)
    county["交易笔数 [n]"] = rng.integers(0, 20, n)
    county["p_demand"] = rng.random(n)
    county.loc[rng.random(n) < 0.05, "数值列3 [v3]"] = np.nan
    top = county.head(10).copy()
    land_use = pd.DataFrame(
        {
            "代码": np.arange(26),
            "类型": ["有林地"] * 26,
            **{f"c{j}": rng.random(26) for j in range(6)},
        }
    )
    matrix = pd.DataFrame(rng.random((7, 8)) * 1e6, columns=[f"t{j}" for j in range(8)])
    matrix.insert(0, "转出 \\ 转入", [f"r{i}" for i in range(7)])
    trades = pd.DataFrame(
        {
            "卖方": rng.choice(county["名称 [name]"], N_TRADES),
            "买方": rng.choice(county["名称 [name]"], N_TRADES),
            "交易量": rng.random(N_TRADES) * 1e4,
            "价格": 50000.0,
            "金额": rng.random(N_TRADES) * 1e8,
            "层级": rng.choice(["市内", "省内", "区域"], N_TRADES),
            "距离": rng.random(N_TRADES) * 500,
        }
    )
    coeff = pd.DataFrame(
        {"代码": [21, 22, 23], "类型": ["有林地", "灌木林", "疏林地"], "k": [1, 0.89, 0.75]}
    )
    return {
        "县级生态券": county,
        "区域汇总": county.iloc[:20, :6],
        "需求前十": top,
        "供给前十": top,
        "土地利用结构": land_use,
        "土地利用转移": matrix,
        "生态券交易": trades,
        "标准林系数": coeff,
    }


def xlsxwriter_write(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """The tables through XlsxWriter, row by row as constant_memory needs, with number formats."""
    import math

    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "nan_inf_to_errors": False})
    bold = wb.add_format({"bold": True})
    two = wb.add_format({"num_format": "#,##0.00"})
    whole = wb.add_format({"num_format": "#,##0"})
    for name, df in sheets.items():
        ws = wb.add_worksheet(name)
        ws.freeze_panes(1, 0)
        ws.write_row(0, 0, [str(c) for c in df.columns], bold)
        kinds = [
            "i"
            if pd.api.types.is_integer_dtype(t)
            else "f"
            if pd.api.types.is_float_dtype(t)
            else "s"
            for t in df.dtypes
        ]
        columns = [df[c].tolist() for c in df.columns]
        for r, row in enumerate(zip(*columns), start=1):
            for c, (v, k) in enumerate(zip(row, kinds)):
                if k == "f":
                    if math.isfinite(v):
                        ws.write_number(r, c, v, two)
                elif k == "i":
                    ws.write_number(r, c, v, whole)
                elif v is not None and v == v:
                    ws.write_string(r, c, str(v))
    wb.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sheets = national_tables()
    writers = {"xlsxwriter (constant_memory)": xlsxwriter_write}
    try:
        hand = importlib.import_module("pipeline.xlsx").write_xlsx
        writers["hand-written pipeline/xlsx.py"] = lambda p, s: hand(p, s)
    except (ImportError, AttributeError):
        pass
    with tempfile.TemporaryDirectory() as tmp:
        for label, write in writers.items():
            times = []
            for i in range(args.repeat):
                path = Path(tmp) / f"t{i}.xlsx"
                t0 = time.perf_counter()
                write(path, sheets)
                times.append(time.perf_counter() - t0)
            size = path.stat().st_size
            print(
                f"{label}: median {statistics.median(times):.3f} s "
                f"(range {min(times):.3f}–{max(times):.3f} s, {size / 1024:.0f} KiB)"
            )


if __name__ == "__main__":
    main()
