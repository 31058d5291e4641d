"""The report's XLSX writer, read back with openpyxl."""

from __future__ import annotations

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.output.xlsx import _column_letter, write_xlsx


def test_values_types_and_layout_read_back(tmp_path):
    df = pd.DataFrame(
        {
            "县级行政区代码 [county_id]": ["110101", "110102", None],  # codes stay text
            "name": ["东城区", ' a <b> & "c"\x01', "x"],  # escaped; control char dropped
            "area_ha": [1234.5, np.nan, 0.1 + 0.2],  # NaN → empty; full precision kept
            "n": pd.array([3, 4, None], dtype="Int64"),
            "flag": [True, False, True],
            "big": [np.inf, -1e300, 2.0],
        }
    )
    other = pd.DataFrame({"k": ["a"], "v": [1]})
    long_name = "一个超过三十一个字符的工作表名称" * 3  # 45 characters: cut to 31
    path = tmp_path / "t.xlsx"
    write_xlsx(path, {"县级生态券": df, long_name: other}, creator="ecovoucher", title="T")

    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["县级生态券", long_name[:31]]
    assert (wb.properties.creator, wb.properties.title) == ("ecovoucher", "T")
    ws = wb["县级生态券"]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == tuple(df.columns)
    assert rows[1] == ("110101", "东城区", 1234.5, 3, True, None)  # inf → empty
    assert rows[2] == ("110102", ' a <b> & "c"', None, 4, False, -1e300)
    assert rows[3][0] is None and rows[3][3] is None
    assert rows[3][2] == 0.1 + 0.2  # 0.30000000000000004, not rounded to 15 digits
    assert isinstance(rows[1][3], int)
    assert ws.freeze_panes == "A2"
    assert ws["A1"].font.b and not ws["A2"].font.b
    # widths: longest of header and values + 2, at most 48: "县级行政区代码 [county_id]" = 19 → 21
    assert ws.column_dimensions["A"].width == 21
    assert ws.column_dimensions["F"].width == len("-1e+300") + 2
    assert list(wb[long_name[:31]].iter_rows(values_only=True)) == [("k", "v"), ("a", 1)]


def test_same_tables_same_bytes(tmp_path):
    df = pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]})
    write_xlsx(tmp_path / "1.xlsx", {"s": df})
    write_xlsx(tmp_path / "2.xlsx", {"s": df})
    assert (tmp_path / "1.xlsx").read_bytes() == (tmp_path / "2.xlsx").read_bytes()


def test_empty_table_and_clashing_names(tmp_path):
    write_xlsx(tmp_path / "e.xlsx", {"empty": pd.DataFrame({"a": pd.Series([], dtype=float)})})
    assert list(openpyxl.load_workbook(tmp_path / "e.xlsx")["empty"].values) == [("a",)]
    with pytest.raises(ValueError, match="31 characters"):
        write_xlsx(
            tmp_path / "c.xlsx", {"x" * 31 + "1": pd.DataFrame(), "x" * 31 + "2": pd.DataFrame()}
        )


@pytest.mark.parametrize(
    ("i", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")]
)
def test_column_letters(i, letters):
    # 26 one-letter columns, then 26² two-letter ones: 26 + 676 = 702 is the first of three
    assert _column_letter(i) == letters
