"""The report's display tables, CSV/XLSX cells and HTML page, on small hand-made tables.

Three counties (area 1 km² = 100 hm² each):
- 甲区: ΔM = −5 hm², G = 2, P = 25 → E = −5 × 2 × 25 = −250 hm² (demand; |E| = 2.5 × its area);
- 乙县: ΔM = +100 hm², G = 0.5, P = 1 → E = 50 hm² (supply; |E| = 0.5 × its area);
- 丙县: nothing changed, E = 0 (balanced), P = 0.0034 (below 0.01: two significant figures).
"""

from __future__ import annotations

import re

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.output.page import html_table, is_synthetic_demo, page_context, render_html
from pipeline.output.tables import display_tables, write_tables

ALIASES = {
    "county_id": ("县级行政区代码", ""),
    "name": ("县级行政区名称", ""),
    "voucher_ha": ("动态生态券 E (hm²)", ""),
    "sf_base_ha": ("{b}年标准林面积 (hm²)", ""),
    "role": ("供需角色", ""),
}
YEARS = ("2010", "2018")


def counties() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "county_id": ["110101", "130102", "130103"],
            "name": ["甲区", "乙县", "丙县"],
            "province": ["北京市", "河北省", "河北省"],
            "city": ["北京市", "石家庄市", "石家庄市"],
            "area_km2": [1.0, 1.0, 1.0],
            "sf_base_ha": [10.0, 20.0, 30.000000000001],
            "static_voucher_ha": [-5.0, 100.0, 0.0],
            "gdp_coef": [2.0, 0.5, 0.9999999999999989],
            "pop_coef": [25.0, 1.0, 0.0034],
            "voucher_ha": [-250.0, 50.0, 0.0],
            "role": ["demand", "supply", "balanced"],
            "value_yuan": [-12_500_000.004, 2_500_000.0, 0.0],
        }
    )


TOTALS = {
    "sf_base_ha": 60.0,
    "demand_ha": 250.0,
    "supply_ha": 50.0,
    "net_ha": 200.0,  # 250 − 50
    "n_counties": 3.0,
    "n_demand": 1.0,
    "n_supply": 1.0,
    "n_balanced": 1.0,
    "traded_ha": 50.0,
    "price_yuan_per_ha": 50_000.0,
    "annual_cap_ha": 40.0,
    "cap_binding": 1.0,
    "uncapped_traded_ha": 50.0,
    "unmet_demand_ha": 210.0,  # 250 − 40 traded
    "unsold_supply_ha": 10.0,
    "n_trades": 1.0,
    "n_buyers_unmet": 1.0,
    "demand_ha_p05": 200.0,
    "demand_ha_p50": 250.0,
    "demand_ha_p95": 300.0,
}


def transitions() -> pd.DataFrame:
    # 21 → 21 kept 10 hm²; 11 → 21 4.2e-11 hm² (a rounding sliver: blank in the display table)
    return pd.DataFrame(
        {"county_id": ["110101", "110101"], "from_code": [21, 11], "to_code": [21, 21],
         "area_ha": [10.0, 4.2e-11]}
    )  # fmt: skip


def trades() -> pd.DataFrame:
    return pd.DataFrame(
        {"seller_id": ["130102"], "seller_name": ["乙县"], "buyer_id": ["110101"],
         "buyer_name": ["甲区"], "volume_ha": [40.0], "price_yuan_per_ha": [50_000.0],
         "value_yuan": [2_000_000.0], "level": ["region"], "distance_km": [12.345]}
    )  # fmt: skip


@pytest.fixture
def tables():
    return display_tables(
        counties(), TOTALS, YEARS, ALIASES, transitions=transitions(), trades=trades(),
        coefficients={21: 1.0, 41: 2.1},
    )  # fmt: skip


def test_csv_is_rounded_with_chinese_headers_and_keys(tables, tmp_path):
    write_tables(tables, tmp_path)
    cv = pd.read_csv(tmp_path / "tables" / "county_vouchers.csv", encoding="utf-8-sig", dtype=str)
    assert "动态生态券 E (hm²) [voucher_ha]" in cv.columns
    assert "2010年标准林面积 (hm²) [sf_base_ha]" in cv.columns
    assert list(cv["供需角色 [role]"]) == ["需求方", "供给方", "平衡"]
    assert cv["2010年标准林面积 (hm²) [sf_base_ha]"][2] == "30.0"  # 30.000000000001 rounded
    assert cv["gdp_coef"][2] == "1.0"  # 0.9999999999999989 to 0.01
    assert cv["pop_coef"][2] == "0.0034"
    assert cv["value_yuan"][0] == "-12500000.0"  # −12,500,000.004 to the fen
    totals = pd.read_csv(tmp_path / "tables" / "region_totals.csv", encoding="utf-8-sig")
    n = totals.set_index("键 [key]").loc["n_counties", "数值 [value]"]
    assert str(n) in ("3", "3.0")
    matrix = pd.read_csv(tmp_path / "tables" / "transitions_by_class.csv", encoding="utf-8-sig")
    # row 2010 耕地: its only cell, 4.2e-11 hm² to 林地, is below 1e-6 hm²: blank, not 4.2e-11
    row = matrix.set_index(matrix.columns[0]).loc["2010年 耕地"]
    assert row.isna().all()
    trade = pd.read_csv(tmp_path / "tables" / "trades.csv", encoding="utf-8-sig")
    assert trade["撮合层级 [level]"][0] == "区域" and trade["距离 (km) [distance_km]"][0] == 12.3


def test_xlsx_has_number_formats_and_a_trades_sheet(tables, tmp_path):
    write_tables(tables, tmp_path)
    wb = openpyxl.load_workbook(tmp_path / "eco_vouchers_tables.xlsx")
    assert {"县级生态券", "区域汇总", "生态券交易", "交易市场", "不确定性"} <= set(wb.sheetnames)
    ws = wb["县级生态券"]
    header = [c.value for c in ws[1]]
    e = header.index("动态生态券 E (hm²) [voucher_ha]") + 1
    cell = ws.cell(row=2, column=e)
    assert cell.value == -250 and cell.number_format == "#,##0.00"
    assert (
        ws.cell(row=2, column=header.index("县级行政区代码 [county_id]") + 1).value == "110101"
    )  # text kept


def test_html_rounds_translates_and_keeps_keys_as_tooltips(tables):
    ctx = page_context(
        counties=counties(),
        summary=pd.DataFrame({"key": ["data_notes"], "value": [np.nan], "text": ["DEMO DATA."]}),
        tables=tables, years=YEARS, figures=[], files=["report.html"], gpkg_name="x.gpkg",
        config={"national": {2018: {"gdp_per_capita_yuan": 65534,
                                    "population_density_per_km2": 145.4}},
                "price_yuan_per_ha": 50000},
    )  # fmt: skip
    page = render_html(ctx)
    assert "演示数据" in page  # the banner
    body = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    visible = re.sub(r"<[^>]+>", " ", body)  # the text a reader sees: keys only as tooltips
    for key in ("sf_base_ha", "voucher_ha", "n_counties", "demand", "supply", "region"):
        assert key not in visible, key
    assert 'title="n_counties"' in page
    assert ">3<" in page and "3.00 个" not in page  # counts as integers
    assert "−250.00" in page  # E, true minus
    # |E| > area: 甲区 only (250 hm² > 100 hm², ratio 2.50); 乙县 50 < 100 is not listed
    assert ctx["read_e"]["n_over"] == 1 and "2.50" in page
    # market: cap binding, unmet demand; uncertainty: p05/p50/p95
    assert "起了约束作用" in page and "210.00" in page
    assert "第5百分位" in page and "300.00" in page


def test_no_banner_for_real_data(tables):
    summary = pd.DataFrame({"key": ["data_notes"], "value": [np.nan], "text": ["县界 2020"]})
    assert not is_synthetic_demo(summary)
    assert is_synthetic_demo(summary.assign(text=["DEMO DATA (演示数据) …"]))


def test_html_table_limits_rows_and_says_so(tables):
    view = html_table(tables["county_vouchers"], limit=2)
    assert len(view["rows"]) == 2 and "共 3 条" in view["note"]


def test_tables_name_other_legends_and_group_the_matrix(tmp_path):
    """Base year RESDC (21 有林地, 10 ha), target year 三调 (0301 乔木林地, 8 ha): the land-use
    table names the legend and the class, k comes per legend; the two legends meet in their
    groups: forest → forest 8 ha, forest → built-up 2 ha (row total 10 = the base area)."""
    class_areas = pd.DataFrame(
        {"county_id": ["110101"] * 2, "year": [2010, 2018], "legend": ["resdc", "sandiao"],
         "class_code": ["21", "0301"], "area_ha": [10.0, 8.0]}
    )  # fmt: skip
    transitions = pd.DataFrame(
        {"county_id": ["110101"] * 2, "from_code": ["21", "21"], "to_code": ["0301", "0501"],
         "from_legend": ["resdc"] * 2, "to_legend": ["sandiao"] * 2,
         "from_group": ["forest", "forest"], "to_group": ["forest", "built-up"],
         "area_ha": [8.0, 2.0]}
    )  # fmt: skip
    legend_k = {"resdc": {"21": 1.0}, "sandiao": {"0301": 1.0}}
    tables = display_tables(
        counties(), TOTALS, YEARS, ALIASES, class_areas=class_areas, transitions=transitions,
        legend_k=legend_k,
    )  # fmt: skip
    land = tables["land_use_by_class"].frame.set_index(["legend", "class_code"])
    assert land.loc[("sandiao", "0301"), "class_name"] == "乔木林地"
    assert land.loc[("sandiao", "0301"), "sf_target_ha"] == 8.0  # 8 ha × k 1.0
    matrix = tables["transitions_by_class"].frame.set_index("from")
    assert matrix.loc["2010年 林地", "to_forest"] == 8.0
    assert matrix.loc["2010年 林地", "to_built-up"] == 2.0
    assert matrix.loc["2010年 林地", "row_total"] == 10.0
    assert list(tables["coefficients"].frame["legend"]) == ["resdc", "sandiao"]
