"""Tests of the VEP stage (pipeline/vep/), with every expected value worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import yaml
from shapely.geometry import Point, box

from pipeline.errors import InputError
from pipeline.vep import VepConfig, compute_items, run_vep

REPO = Path(__file__).resolve().parents[1]
NIUJIACUN = REPO / "configs" / "vep" / "niujiacun.yaml"


# ------------------------------------------------------------------------------------ helpers


def _write(folder: Path, config: dict[str, Any], name: str = "vep.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def _items(*items: dict[str, Any]) -> list[Any]:
    return compute_items(VepConfig.model_validate({"site": {"name": "t"}, "items": list(items)}))


def _quiet(_: str) -> None:
    pass


CONSTANT = {
    "category": "material",
    "method": "income_capitalization",
    "net_income": 100_000,
    "rate": 0.05,
    "years": 3,
    "p_prime": 50_000,
}
PERPETUAL = {
    "category": "tourism",
    "method": "perpetual_income",
    "net_income": 50_000,
    "rate": 0.04,
    "p_prime": 1_000_000,
}
MARKET = {
    "category": "landscape",
    "method": "market_comparison",
    "properties": [
        {"name": "甲小区", "premium_per_m2": 500, "floor_area_m2": 15_000},
        {"name": "乙小区", "premium_per_m2": 1_300, "floor_area_m2": 2_000},
    ],
}
RESIDUAL = {
    "category": "landscape",
    "method": "residual",
    "completed_value": 10_000_000,
    "development_cost": 6_000_000,
    "normal_profit": 1_500_000,
    "p_prime": 500_000,
}
COST = {
    "category": "cultural",
    "method": "cost",
    "costs": [
        {"name": "步道", "amount": 120_000},
        {"name": "标识", "amount": 80_000},
        {"name": "绿化", "amount": 50_000},
    ],
}


# ------------------------------------------------------------------------------------ methods


def test_income_capitalization_constant() -> None:
    # A = 100,000, r = 0.05, n = 3: 1.05^3 = 1.157625, 1/1.157625 = 0.863837599,
    # A/r·(1 − 0.863837599) = 2,000,000 × 0.136162401 = 272,324.80; V = 272,324.80 − 50,000
    (res,) = _items(CONSTANT)
    assert res.p_yuan == pytest.approx(272_324.80, abs=0.01)
    assert res.vep_yuan == pytest.approx(222_324.80, abs=0.01)
    assert res.vep_10k_yuan == pytest.approx(22.232480, abs=1e-6)
    assert res.years == 3 and res.rate == 0.05
    # the same P as the explicit sum 100,000/1.05 + 100,000/1.05² + 100,000/1.05³
    assert res.p_yuan == pytest.approx(95_238.095 + 90_702.948 + 86_383.760, abs=0.01)
    assert "100,000/0.05*(1-1.05^-3) = 272,324.80" in res.formula
    assert "V = P - P' = 272,324.80 - 50,000 = 222,324.80" in res.formula


def test_income_capitalization_list_of_yearly_incomes() -> None:
    # A = 1,000,000, 1,100,000, 1,210,000 at r = 0.10: each term is 909,090.909
    # (1e6/1.1 = 1.1e6/1.21 = 1.21e6/1.331), so P = 3 × 909,090.909 = 2,727,272.73; years = 3
    item = {
        "category": "material",
        "method": "income_capitalization",
        "net_income": [1_000_000, 1_100_000, 1_210_000],
        "rate": 0.10,
    }
    (res,) = _items(item)
    assert res.p_yuan == pytest.approx(2_727_272.73, abs=0.01)
    assert res.vep_yuan == pytest.approx(2_727_272.73, abs=0.01)
    assert res.years == 3
    assert "1,000,000/1.1^1 + 1,100,000/1.1^2 + 1,210,000/1.1^3" in res.formula
    # an explicit years that agrees is fine
    (same,) = _items({**item, "years": 3})
    assert same.vep_yuan == res.vep_yuan


def test_perpetual_income() -> None:
    # P = a/r = 50,000/0.04 = 1,250,000; V = 1,250,000 − 1,000,000 = 250,000
    (res,) = _items(PERPETUAL)
    assert res.p_yuan == pytest.approx(1_250_000.00, abs=0.01)
    assert res.p_prime_yuan == 1_000_000
    assert res.vep_yuan == pytest.approx(250_000.00, abs=0.01)
    assert res.years is None
    assert "P = a/r = 50,000/0.04 = 1,250,000.00" in res.formula


def test_market_comparison() -> None:
    # 500 × 15,000 + 1,300 × 2,000 = 7,500,000 + 2,600,000 = 10,100,000; P' = 0
    (res,) = _items(MARKET)
    assert res.p_yuan == pytest.approx(10_100_000.00, abs=0.01)
    assert res.vep_yuan == pytest.approx(10_100_000.00, abs=0.01)
    assert res.rate is None
    assert "500*15,000 + 1,300*2,000 = 10,100,000.00" in res.formula


def test_residual() -> None:
    # P = 10,000,000 − 6,000,000 − 1,500,000 = 2,500,000; V = 2,500,000 − 500,000 = 2,000,000
    (res,) = _items(RESIDUAL)
    assert res.p_yuan == pytest.approx(2_500_000.00, abs=0.01)
    assert res.vep_yuan == pytest.approx(2_000_000.00, abs=0.01)
    assert "10,000,000 - 6,000,000 - 1,500,000 = 2,500,000.00" in res.formula


def test_cost() -> None:
    # P = 120,000 + 80,000 + 50,000 = 250,000; P' defaults to 0
    (res,) = _items(COST)
    assert res.p_yuan == pytest.approx(250_000.00, abs=0.01)
    assert res.p_prime_yuan == 0
    assert res.vep_yuan == pytest.approx(250_000.00, abs=0.01)
    assert "P = sum costs = 120,000 + 80,000 + 50,000 = 250,000.00" in res.formula


def test_all_five_methods_total(tmp_path: Path) -> None:
    # 222,324.80 + 250,000 + 10,100,000 + 2,000,000 + 250,000 = 12,822,324.80
    config = _write(
        tmp_path / "五法",
        {"site": {"name": "样地"}, "items": [CONSTANT, PERPETUAL, MARKET, RESIDUAL, COST]},
    )
    result = run_vep(config, tmp_path / "out", echo=_quiet)
    assert [r.index for r in result.items] == [1, 2, 3, 4, 5]
    assert result.total_yuan == pytest.approx(12_822_324.80, abs=0.01)
    assert result.total_10k_yuan == pytest.approx(1_282.232480, abs=1e-6)


def test_item_name_defaults_and_unknown_category_warns(tmp_path: Path) -> None:
    item = {**COST, "category": "rights"}
    config = _write(tmp_path, {"items": [item]})
    lines: list[str] = []
    result = run_vep(config, tmp_path / "out", echo=lines.append)
    assert result.items[0].category == "rights"
    assert result.items[0].name == "rights (cost)"
    assert any("item 1" in w and "'rights'" in w for w in result.warnings)
    assert any(line.startswith("warning:") and "rights" in line for line in lines)


def test_field_not_used_by_method_warns(tmp_path: Path) -> None:
    config = _write(tmp_path, {"items": [{**PERPETUAL, "years": 20}]})
    result = run_vep(config, tmp_path / "out", echo=_quiet)
    assert result.items[0].vep_yuan == pytest.approx(250_000.00, abs=0.01)  # years ignored
    assert any("'years'" in w and "perpetual_income" in w for w in result.warnings)


# ---------------------------------------------------------------------------------- Niujiacun


def test_niujiacun_reproduces_the_paper(tmp_path: Path) -> None:
    # 10^4 yuan: material 186/0.0681·(1 − 1.0681^−5) = 766.53 (the paper's slip prints 522.00),
    # regulating 0, landscape 750 + 6032 + 8398 + 17680 = 32,860.00,
    # tourism 8557.02/0.0681 − 74,292.28 = 125,653.74 − 74,292.28 = 51,361.46,
    # total 84,987.997 → 84,988.00
    out = tmp_path / "牛角村 out"
    result = run_vep(NIUJIACUN, out, echo=_quiet)
    by_cat = {r.category: r for r in result.items}
    assert set(by_cat) == {"material", "regulating", "landscape", "tourism"}
    assert round(by_cat["material"].vep_10k_yuan, 2) == 766.53
    assert round(by_cat["regulating"].vep_10k_yuan, 2) == 0
    assert round(by_cat["landscape"].vep_10k_yuan, 2) == 32_860.00
    assert round(by_cat["tourism"].vep_10k_yuan, 2) == 51_361.46
    assert round(by_cat["tourism"].p_10k_yuan, 2) == 125_653.74
    assert round(result.total_10k_yuan, 2) == 84_988.00
    assert result.total_10k_yuan == pytest.approx(84_987.997, abs=0.0005)
    # to the fen, in yuan
    assert by_cat["material"].vep_yuan == pytest.approx(7_665_322.40, abs=0.01)
    assert by_cat["landscape"].vep_yuan == pytest.approx(328_600_000.00, abs=0.01)
    assert by_cat["tourism"].vep_yuan == pytest.approx(513_614_644.93, abs=0.01)
    assert result.total_yuan == pytest.approx(849_879_967.34, abs=0.01)
    # the four landscape properties are the paper's 750, 6032, 8398, 17680 (10^4 yuan)
    landscape = next(i for i in result.config.items if i.category == "landscape")
    values = [p.premium_per_m2 * p.floor_area_m2 / 1e4 for p in landscape.properties or []]
    assert values == [750, 6032, 8398, 17680]
    # the paper's 522.00 is 186/0.10·(1 − 1.0681^−5) = 522.008 (printed truncated): the slip the
    # config comment explains
    paper_slip = 186 / 0.10 * (1 - 1.0681**-5)
    assert paper_slip == pytest.approx(522.008, abs=0.0005)
    assert "522.00" in NIUJIACUN.read_text(encoding="utf-8")


def test_niujiacun_echo_table(tmp_path: Path) -> None:
    lines: list[str] = []
    run_vep(NIUJIACUN, tmp_path / "out", echo=lines.append)
    text = "\n".join(lines)
    assert "牛角村欢乐田园度假区" in text
    assert "7,665,322.40" in text and "766.53" in text  # yuan and 10^4 yuan
    assert "84,988.00" in text and "849,879,967.34" in text
    assert "1,860,000/0.0681*(1-1.0681^-5)" in text  # the formula with numbers
    assert "85,570,200/0.0681 = 1,256,537,444.93" in text


# -------------------------------------------------------------------------------- sensitivity


def test_sensitivity_table(tmp_path: Path) -> None:
    # perpetual a = 50,000, P' = 1,000,000: r = 3 % → P = 1,666,666.67, V = 666,666.67;
    # r = 4 % → V = 250,000; r = 5 % → P = 1,000,000, V = 0.
    # market comparison does not depend on r: 10,100,000 in every column.
    # totals: 10,766,666.67 | 10,350,000 | 10,100,000
    config = _write(tmp_path / "敏感性", {"items": [PERPETUAL, MARKET]})
    result = run_vep(config, tmp_path / "out", echo=_quiet)
    s = result.sensitivity.set_index("item")
    assert s.loc["1", "rate_r_minus_1pp"] == pytest.approx(0.03)
    assert s.loc["1", "rate_r_plus_1pp"] == pytest.approx(0.05)
    assert s.loc["1", "vep_yuan_r_minus_1pp"] == pytest.approx(666_666.67, abs=0.01)
    assert s.loc["1", "vep_yuan_r"] == pytest.approx(250_000.00, abs=0.01)
    assert s.loc["1", "vep_yuan_r_plus_1pp"] == pytest.approx(0.00, abs=0.01)
    for col in ("vep_yuan_r_minus_1pp", "vep_yuan_r", "vep_yuan_r_plus_1pp"):
        assert s.loc["2", col] == pytest.approx(10_100_000.00, abs=0.01)
    assert math.isnan(s.loc["2", "rate_r"])
    assert s.loc["total", "vep_yuan_r_minus_1pp"] == pytest.approx(10_766_666.67, abs=0.01)
    assert s.loc["total", "vep_yuan_r"] == pytest.approx(10_350_000.00, abs=0.01)
    assert s.loc["total", "vep_yuan_r_plus_1pp"] == pytest.approx(10_100_000.00, abs=0.01)
    assert s.loc["total", "vep_10k_yuan_r"] == pytest.approx(1_035.0, abs=1e-6)
    # the CSV holds the same table
    # the CSV holds the same table, Chinese headers with the key, money rounded to the fen
    csv = pd.read_csv(result.sensitivity_csv_path, encoding="utf-8-sig", dtype={"序号 [item]": str})
    assert list(csv["序号 [item]"]) == ["1", "2", "total"]
    assert csv.loc[2, "V (元)，r − 1 个百分点 [vep_yuan_r_minus_1pp]"] == 10_766_666.67


def test_sensitivity_niujiacun(tmp_path: Path) -> None:
    # material at 5.81 %: 1,860,000/0.0581·(1 − 1.0581^−5) = 7,875,660.60;
    # tourism at 7.81 %: 85,570,200/0.0781 = 1,095,649,167.73, − 742,922,800 = 352,726,367.73
    result = run_vep(NIUJIACUN, tmp_path / "out", echo=_quiet)
    s = result.sensitivity.set_index("item")
    assert s.loc["1", "vep_yuan_r_minus_1pp"] == pytest.approx(7_875_660.60, abs=0.01)
    assert s.loc["4", "vep_yuan_r_plus_1pp"] == pytest.approx(352_726_367.73, abs=0.01)
    assert s.loc["total", "vep_yuan_r"] == pytest.approx(849_879_967.34, abs=0.01)


def test_sensitivity_rate_below_one_point_is_not_computed(tmp_path: Path) -> None:
    # r = 0.5 %: r − 1 pp = −0.5 % is not a valid rate, so V and the total are left empty
    config = _write(tmp_path, {"items": [{**PERPETUAL, "rate": 0.005}]})
    result = run_vep(config, tmp_path / "out", echo=_quiet)
    s = result.sensitivity.set_index("item")
    assert math.isnan(s.loc["1", "vep_yuan_r_minus_1pp"])
    assert math.isnan(s.loc["total", "vep_yuan_r_minus_1pp"])
    # 50,000/0.015 − 1,000,000 = 2,333,333.33
    assert s.loc["1", "vep_yuan_r_plus_1pp"] == pytest.approx(2_333_333.33, abs=0.01)
    assert "outside (0, 1)" in s.loc["1", "note"]


# --------------------------------------------------------------------------------- validation


def _error(tmp_path: Path, config: Any, *, raw: str | None = None) -> InputError:
    """Run on a bad config; assert the InputError and that no vep.gpkg (or temp file) is left."""
    folder = tmp_path / "坏配置"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vep.yaml"
    if raw is not None:
        path.write_text(raw, encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(InputError) as info:
        run_vep(path, out, echo=_quiet)
    assert not (out / "vep.gpkg").exists()
    assert not out.exists() or not list(out.iterdir())
    return info.value


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({**CONSTANT, "rate": 0}, "rate", "0 < r < 1"),
        ({**CONSTANT, "rate": -0.02}, "rate", "0 < r < 1"),
        ({**CONSTANT, "rate": 1}, "rate", "0 < r < 1"),
        ({**PERPETUAL, "rate": 6.81}, "rate", "write 0.0681"),
        ({**CONSTANT, "years": 0}, "years", "at least 1"),
        ({**CONSTANT, "years": -4}, "years", "at least 1"),
        (
            {**MARKET, "properties": [{"name": "甲", "premium_per_m2": 500, "floor_area_m2": -1}]},
            "properties[1] (甲).floor_area_m2",
            "negative",
        ),
        (
            {**CONSTANT, "net_income": [1, 2, 3], "years": 2},
            "years",
            "lists 3 yearly values",
        ),
        ({**CONSTANT, "net_income": []}, "net_income", "empty"),
        ({**PERPETUAL, "net_income": [1, 2]}, "net_income", "not a list"),
        ({k: v for k, v in CONSTANT.items() if k != "years"}, "years", "missing"),
        ({k: v for k, v in CONSTANT.items() if k != "rate"}, "rate", "missing"),
        ({k: v for k, v in CONSTANT.items() if k != "net_income"}, "net_income", "missing"),
        ({k: v for k, v in PERPETUAL.items() if k != "rate"}, "rate", "missing"),
        ({k: v for k, v in PERPETUAL.items() if k != "net_income"}, "net_income", "missing"),
        ({k: v for k, v in MARKET.items() if k != "properties"}, "properties", "missing"),
        (
            {**MARKET, "properties": [{"premium_per_m2": 1}]},
            "properties[1].floor_area_m2",
            "missing",
        ),
        (
            {**MARKET, "properties": [{"floor_area_m2": 1}]},
            "properties[1].premium_per_m2",
            "missing",
        ),
        (
            {k: v for k, v in RESIDUAL.items() if k != "completed_value"},
            "completed_value",
            "missing",
        ),
        (
            {k: v for k, v in RESIDUAL.items() if k != "development_cost"},
            "development_cost",
            "missing",
        ),
        ({k: v for k, v in RESIDUAL.items() if k != "normal_profit"}, "normal_profit", "missing"),
        ({k: v for k, v in COST.items() if k != "costs"}, "costs", "missing"),
        ({**COST, "costs": [{"name": "步道"}]}, "costs[1] (步道).amount", "missing"),
        ({k: v for k, v in COST.items() if k != "method"}, "method", "missing"),
        ({**COST, "category": ""}, "category", "missing"),
        ({k: v for k, v in COST.items() if k != "category"}, "category", "missing"),
        ({**CONSTANT, "net_income": "abc"}, "net_income", "expected a number"),
        ({**CONSTANT, "years": 2.5}, "years", "integer"),
        ({**CONSTANT, "rate": True}, "rate", "boolean"),
        ({**PERPETUAL, "p_prim": 5}, "p_prim", "did you mean 'p_prime'"),
    ],
)
def test_validation_error_names_item_and_field(
    tmp_path: Path, item: dict[str, Any], field: str, words: str
) -> None:
    error = _error(tmp_path, {"site": {"name": "x"}, "items": [COST, item]})
    assert len(error.problems) == 1, str(error)
    problem = error.problems[0]
    assert "item 2 (" in problem.where  # 1-based: the second item of the list
    assert f"field '{field}'" in problem.where
    category = item.get("category")
    if category:
        assert f"category '{category}'" in problem.where
    assert words in str(problem)
    assert "vep.yaml" in problem.where


def test_unknown_method_lists_the_valid_ones(tmp_path: Path) -> None:
    error = _error(tmp_path, {"items": [{**MARKET, "method": "comparison"}]})
    (problem,) = error.problems
    assert "item 1 (category 'landscape', method 'comparison'), field 'method'" in problem.where
    for method in ("income_capitalization", "perpetual_income", "market_comparison", "residual"):
        assert method in problem.message
    assert "cost" in problem.message
    assert "did you mean 'market_comparison'" in problem.message


def test_every_problem_is_listed_in_one_error(tmp_path: Path) -> None:
    config = {
        "site": {"name": "x", "path": "missing.geojson"},
        "items": [
            {**CONSTANT, "rate": 0},
            {**PERPETUAL, "method": "marx"},
            {**CONSTANT, "net_income": "abc", "years": 0},
            5,
        ],
    }
    error = _error(tmp_path, config)
    text = str(error)
    assert text.startswith("6 problems with the input:")
    wheres = [p.where for p in error.problems]
    assert "site file" in wheres[0] and "missing.geojson" in wheres[0]
    assert "item 1 (category 'material', method 'income_capitalization'), field 'rate'" in text
    assert "item 2 (category 'tourism', method 'marx'), field 'method'" in text
    assert (
        "item 3 (category 'material', method 'income_capitalization'), field 'net_income'" in text
    )
    assert "item 3 (category 'material', method 'income_capitalization'), field 'years'" in text
    assert "item 4" in text and "expected a mapping" in text


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("items: [\n  {category: material\n", "not valid YAML at line"),
        ("", "empty file"),
        ("- 1\n- 2\n", "must be a YAML mapping"),
        ("site: {name: x}\n", "field 'items': missing"),
        ("items: []\n", "no items"),
        ("items: [{category: cost}]\nsitee: {name: x}\n", "did you mean 'site'"),
    ],
)
def test_config_file_errors(tmp_path: Path, raw: str, words: str) -> None:
    error = _error(tmp_path, None, raw=raw)
    assert words in str(error)
    assert "vep.yaml" in str(error)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as info:
        run_vep(tmp_path / "没有.yaml", tmp_path / "out", echo=_quiet)
    assert "没有.yaml" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes("site: {name: 牛角村}\nitems: []\n".encode("gbk"))
    with pytest.raises(InputError, match="UTF-8"):
        run_vep(path, tmp_path / "out", echo=_quiet)


def test_site_file_not_polygons(tmp_path: Path) -> None:
    folder = tmp_path / "点"
    folder.mkdir()
    gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)], crs="EPSG:4326").to_file(
        folder / "site.geojson"
    )
    config = _write(folder, {"site": {"name": "x", "path": "site.geojson"}, "items": [COST]})
    with pytest.raises(InputError, match="must hold polygons, found Point"):
        run_vep(config, tmp_path / "out", echo=_quiet)
    assert not (tmp_path / "out" / "vep.gpkg").exists()


def test_site_file_unreadable(tmp_path: Path) -> None:
    (tmp_path / "site.geojson").write_text("not a geojson", encoding="utf-8")
    config = _write(tmp_path, {"site": {"name": "x", "path": "site.geojson"}, "items": [COST]})
    with pytest.raises(InputError, match="cannot be read"):
        run_vep(config, tmp_path / "out", echo=_quiet)


def test_compute_items_validates_a_config_built_in_python() -> None:
    config = VepConfig.model_validate({"items": [{**PERPETUAL, "rate": 0}]})
    with pytest.raises(InputError, match=r"item 1 .*field 'rate'"):
        compute_items(config)


# ---------------------------------------------------------------------------- atomic outputs


def test_failed_validation_keeps_the_previous_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = _write(tmp_path / "好", {"items": [COST]})
    run_vep(good, out, echo=_quiet)
    before = (out / "vep.gpkg").read_bytes()
    bad = _write(tmp_path / "坏", {"items": [{**COST, "method": "nope"}]})
    with pytest.raises(InputError):
        run_vep(bad, out, echo=_quiet)
    assert (out / "vep.gpkg").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [
        "vep.gpkg",
        "vep_items.csv",
        "vep_sensitivity.csv",
    ]


def test_write_failure_leaves_no_partial_gpkg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pyogrio.write_dataframe

    def failing(df: Any, path: Any, layer: str | None = None, **kwargs: Any) -> None:
        if layer == "vep_site":  # the first layer is written, then the disk "fills up"
            raise OSError("No space left on device")
        real(df, path, layer=layer, **kwargs)

    monkeypatch.setattr(pyogrio, "write_dataframe", failing)
    config = _write(tmp_path, {"items": [COST]})
    out = tmp_path / "输出"
    with pytest.raises(
        InputError, match=r"the disk is full .*No space.* any earlier output there is unchanged"
    ):
        run_vep(config, out, echo=_quiet)  # a full disk is the user's to fix: exit 2
    assert list(out.iterdir()) == []  # neither vep.gpkg nor a temporary file


# ------------------------------------------------------------------------------- gpkg and csv


def test_gpkg_layers_without_site_polygon(tmp_path: Path) -> None:
    out = tmp_path / "结果 ü"
    result = run_vep(NIUJIACUN, out, echo=_quiet)
    assert result.gpkg_path == out / "vep.gpkg"
    layers = dict(pyogrio.list_layers(out / "vep.gpkg"))
    assert layers == {"vep_items": None, "vep_site": None}
    items = pyogrio.read_dataframe(out / "vep.gpkg", layer="vep_items")
    for col in (
        "category",
        "method",
        "p_yuan",
        "p_prime_yuan",
        "vep_yuan",
        "name",
        "formula",
        "p_10k_yuan",
        "p_prime_10k_yuan",
        "vep_10k_yuan",
    ):
        assert col in items.columns
    assert list(items["category"]) == ["material", "regulating", "landscape", "tourism"]
    assert items["vep_yuan"].sum() == pytest.approx(849_879_967.34, abs=0.01)
    assert items.loc[3, "p_prime_yuan"] == 742_922_800
    assert "85,570,200/0.0681" in items.loc[3, "formula"]
    site = pyogrio.read_dataframe(out / "vep.gpkg", layer="vep_site")
    assert len(site) == 1
    assert site.loc[0, "name"] == "牛角村欢乐田园度假区"
    assert site.loc[0, "vep_yuan"] == pytest.approx(849_879_967.34, abs=0.01)
    assert site.loc[0, "vep_10k_yuan"] == pytest.approx(84_987.997, abs=0.0005)


def test_gpkg_site_polygon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "样地"
    folder.mkdir()
    # two parcels: the site is their union
    parcels = [
        box(500_000, 3_700_000, 501_000, 3_701_000),
        box(501_000, 3_700_000, 501_500, 3_700_500),
    ]
    gpd.GeoDataFrame({"id": [1, 2]}, geometry=parcels, crs="EPSG:32650").to_file(
        folder / "site.gpkg", layer="parcels"
    )
    config = _write(
        folder,
        {
            "site": {"name": "样地", "path": "site.gpkg", "layer": "parcels"},
            "items": [CONSTANT, PERPETUAL, MARKET, RESIDUAL, COST],
        },
    )
    monkeypatch.chdir(tmp_path)  # the site path is relative to the config file, not the cwd
    result = run_vep(config, tmp_path / "out", echo=_quiet)
    site = gpd.read_file(result.gpkg_path, layer="vep_site")
    assert len(site) == 1
    assert site.crs.to_epsg() == 32650
    assert site.geometry.iloc[0].area == pytest.approx(1_000_000 + 250_000)
    assert site.loc[0, "vep_yuan"] == pytest.approx(12_822_324.80, abs=0.01)
    items = gpd.read_file(result.gpkg_path, layer="vep_items")
    assert len(items) == 5
    assert list(items["method"]) == [
        "income_capitalization",
        "perpetual_income",
        "market_comparison",
        "residual",
        "cost",
    ]


def test_items_csv_is_utf8_sig_for_excel(tmp_path: Path) -> None:
    result = run_vep(NIUJIACUN, tmp_path / "out", echo=_quiet)
    data = result.items_csv_path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    csv = pd.read_csv(result.items_csv_path, encoding="utf-8-sig")
    assert "物质供给类产品 (园林绿化树木、农副产品)" in set(csv["生态产品 [name]"])
    # each V in 10⁴ yuan rounded to 0.01: 766.53 + 0.00 + 32,860.00 + 51,361.46 = 84,987.99
    # (the unrounded total 84,987.997 is in vep.gpkg)
    assert sorted(csv["V (万元) [vep_10k_yuan]"]) == [0.0, 766.53, 32_860.0, 51_361.46]
    assert list(csv.columns[:4]) == [
        "序号 [item]", "生态产品 [name]", "类别 [category]", "核算方法 [method]"
    ]  # fmt: skip


def test_cost_shorthand_list_of_numbers() -> None:
    # costs: [100,000, 25,000.5] → P = 125,000.50
    (res,) = _items({"category": "cultural", "method": "cost", "costs": [100_000, 25_000.5]})
    assert res.vep_yuan == pytest.approx(125_000.50, abs=0.01)


def test_output_folder_is_a_file(tmp_path: Path) -> None:
    config = _write(tmp_path, {"items": [COST]})
    (tmp_path / "out").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="output folder"):
        run_vep(config, tmp_path / "out", echo=_quiet)


def test_site_name_defaults_to_config_name(tmp_path: Path) -> None:
    config = _write(tmp_path, {"items": [COST]}, name="蔡集.yaml")
    result = run_vep(config, tmp_path / "out", echo=_quiet)
    site = pyogrio.read_dataframe(result.gpkg_path, layer="vep_site")
    assert site.loc[0, "name"] == "蔡集"
    assert site.loc[0, "vep_yuan"] == pytest.approx(250_000.00, abs=0.01)


# ------------------------------------------------------------------- stable annuity (issue 18)


def test_annuity_factor_matches_the_textbook_form_where_that_is_accurate() -> None:
    from pipeline.vep.compute import annuity_factor

    # (1 − 1.05^−3) / 0.05 = (1 − 1/1.157625) / 0.05 = 0.1361624… / 0.05 = 2.7232480…
    assert annuity_factor(0.05, 3) == pytest.approx((1 - 1.05**-3) / 0.05, rel=1e-15)
    assert annuity_factor(0.05, 3) == pytest.approx(2.723248029, rel=1e-9)


@pytest.mark.parametrize("rate", [1e-300, 1e-100, 1e-17, 1e-9])
def test_annuity_factor_tends_to_n_as_the_rate_tends_to_0(rate: float) -> None:
    from pipeline.vep.compute import annuity_factor

    # (1 − (1+r)^−n)/r = n − n(n+1)/2·r + O(r²): n = 5 → 5 − 15·r
    expected = 5 - 15 * rate
    assert annuity_factor(rate, 5) == pytest.approx(expected, rel=1e-15)
    textbook = (1 - (1 + rate) ** -5) / rate  # cancels: 1 + r rounds, then 1 − (1+r)^−n
    assert abs(textbook - expected) / expected > 1e-12


def test_annuity_factor_tends_to_1_over_r_for_long_terms() -> None:
    from pipeline.vep.compute import annuity_factor

    assert annuity_factor(0.05, 10**6) == 1 / 0.05 == 20.0
    assert annuity_factor(0.05, 10**17) == 20.0
