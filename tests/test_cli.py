"""The command line a newcomer meets: -v/-q anywhere, misspelt options, help with examples,
validate listing the catalog's and the config's problems together, declared encodings, .xlsx
statistics, ``ecovoucher init``."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from conftest import SOCIO
from pipeline.cli import COMMANDS, _parser, main
from pipeline.settings.catalog import load_catalog
from pipeline.settings.config import load_config
from pipeline.settings.init import init_project

RUN = ["run", "--catalog", "c.yaml", "--config", "f.yaml", "--out", "out"]


def test_verbosity_before_or_after_the_command():
    p = _parser()
    after = p.parse_args([*RUN, "-v"])
    assert after.verbose is True and after.quiet is False
    before = p.parse_args(["-q", *RUN])
    assert before.quiet is True and before.verbose is False
    assert p.parse_args(RUN).verbose is False


def test_a_misspelt_option_is_unknown_with_a_suggestion(capsys):
    assert main(["run", "--catalgo", "c.yaml", "--config", "f.yaml", "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert "unknown option --catalgo; did you mean --catalog?" in err
    assert "required" not in err
    assert main(["validate", "--catalog=c.yaml", "--config", "f.yaml", "--bogus"]) == 2
    assert "unknown option --bogus" in capsys.readouterr().err
    # a unique prefix is an option argparse accepts: not reported as unknown
    assert _parser().unknown_option(["run", "--cat", "c.yaml"]) is None


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_for_every_option_and_an_example(command):
    sub = _parser().commands[command]
    text = sub.format_help()
    assert "example" in text and f"ecovoucher {command}" in text.split("example", 1)[1]
    for action in sub._actions:
        if action.option_strings:
            assert action.help, f"{command} {action.option_strings} has no help text"


def test_validate_lists_the_catalogs_and_the_configs_problems_together(tmp_path, capsys):
    catalog = tmp_path / "catalog.yaml"
    config = tmp_path / "config.yaml"
    catalog.write_text("datasets: {counties: {path: c.gpkg}}\n", "utf-8")  # no landuse, socio
    config.write_text("years: {base: 2018, target: 2010}\nprice_yuan_per_ha: 1\n", "utf-8")
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "landuse" in err and "socioeconomic" in err  # the catalog's
    assert "base year (2018) must be before the target year (2010)" in err  # the config's


def test_a_declared_encoding_silences_the_encoding_warning(case, capsys):
    catalog, config = case
    socio = catalog.parent / "data" / "socio.csv"
    pd.DataFrame(SOCIO).assign(note="县").to_csv(socio, index=False, encoding="gbk")
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 0
    assert "WARNING" in capsys.readouterr().err  # undeclared: warned ("read as GBK")
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    cat["datasets"]["socioeconomic"]["encoding"] = "gbk"
    catalog.write_text(yaml.safe_dump(cat, allow_unicode=True), "utf-8")
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "WARNING" not in out.err and "GBK" not in out.out + out.err


def test_xlsx_statistics_are_read(case, capsys):
    """The same four rows as socio.csv, as a workbook whose data sit on a second sheet."""
    catalog, config = case
    book = catalog.parent / "data" / "socio.xlsx"
    with pd.ExcelWriter(book, engine="openpyxl") as xw:
        pd.DataFrame({"说明": ["年鉴"]}).to_excel(xw, sheet_name="封面", index=False)
        pd.DataFrame(SOCIO).to_excel(xw, sheet_name="统计", index=False)
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    cat["datasets"]["socioeconomic"].update({"path": "data/socio.xlsx", "sheet": "统计"})
    catalog.write_text(yaml.safe_dump(cat, allow_unicode=True), "utf-8")
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 0
    cat["datasets"]["socioeconomic"]["sheet"] = "没有"
    catalog.write_text(yaml.safe_dump(cat, allow_unicode=True), "utf-8")
    assert main(["validate", "--catalog", str(catalog), "--config", str(config)]) == 2
    assert "has no sheet '没有' (sheets: 封面, 统计)" in capsys.readouterr().err


def test_init_writes_a_catalog_and_config_that_load(tmp_path):
    demo = tmp_path / "演示 数据"
    catalog, config = init_project(tmp_path / "my study", demo)
    cat = load_catalog(catalog)
    assert cat.datasets.counties.path == demo.resolve() / "counties.gpkg"
    assert cat.datasets.landuse[2018].path == demo.resolve() / "lu_2018.shp"
    assert cat.datasets.socioeconomic.gdp_scale == 10000
    cfg, _ = load_config(config)
    assert (cfg.years.base, cfg.years.target) == (2010, 2018)
    assert cfg.national[2018].population_density_per_km2 == 145.4
    assert cfg.market is not None and cfg.uncertainty is not None
    text = config.read_text("utf-8")
    assert "人均GDP" in text and "统计公报" in text  # the national-values table with sources
    with pytest.raises(Exception, match="already exist"):
        init_project(tmp_path / "my study", demo)
    init_project(tmp_path / "my study", demo, force=True)
