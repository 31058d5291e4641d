"""The QGIS plugin in a real, headless QGIS (Debian's python3-qgis), never imported into this
process: the zip built by scripts/build_qgis_plugin.sh is installed into a fresh QGIS profile and
driven by tests/qgis_plugin_driver.py under /usr/bin/python3. Skipped where QGIS is absent
(`.ci/run` installs it).

Data: the two-county case of conftest (甲县 E = −5000 hm² demand, 乙县 E = +2655 hm² supply;
worked out in test_pipeline_end_to_end)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest
from qgis_support import QGIS_ENV, QGIS_PYTHON, needs_qgis, qgis_check

from conftest import write_case

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("qgis_plugin_driver.py")
pytestmark = needs_qgis
ENV = {
    **QGIS_ENV,
    # the command the plugin runs: this checkout's, through the Python running the tests
    "ECOVOUCHER_EXE": shlex.join([sys.executable, "-m", "pipeline"]),
}


def _layers(case: Path) -> dict:
    data = case / "data"
    csv = (data / "socio.csv").as_uri() + "?delimiter=,&detectTypes=yes&geomType=none"
    return {
        "COUNTIES": [f"{data / 'counties.gpkg'}|layername=counties", "ogr"],
        "LANDUSE_BASE": [str(data / "lu_2010.shp"), "ogr"],
        "LANDUSE_TARGET": [str(data / "lu_2018.shp"), "ogr"],
        "SOCIO": [csv, "delimitedtext"],
    }


LAYER_VALUES = {
    "COUNTY_ID_FIELD": "adcode", "BASE_YEAR": 2010, "TARGET_YEAR": 2018,
    "GDP_SCALE": 10000, "POP_SCALE": 10000, "NATIONAL_GDP": 50000, "NATIONAL_DENSITY": 100,
    "PRICE": 50000,
}  # fmt: skip


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> dict:
    """One QGIS session running every step; its report, by step name."""
    tmp = tmp_path_factory.mktemp("qgis 插件")
    zip_path = tmp / "dist" / "ecovoucher_qgis.zip"
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_qgis_plugin.sh"), str(zip_path)], check=True
    )
    case = tmp / "生态券 案例"
    catalog, config = write_case(case)
    bad = tmp / "bad"
    bad_catalog, bad_config = write_case(bad)
    bad_catalog.write_text(bad_catalog.read_text("utf-8").replace("gridcode", "dlbm"), "utf-8")
    vep = ROOT / "configs" / "vep" / "niujiacun.yaml"
    files = {"CATALOG": str(catalog), "CONFIG": str(config)}
    steps = {
        "language": {"op": "language", "lang": "zh"},
        "install": {"op": "install", "zip": str(zip_path)},
        "algorithms_zh": {"op": "algorithms", "lang": "zh"},
        "files": {"op": "run", "alg": "ecovoucher:run", "lang": "zh",
                  "params": {**files, "OUT_FOLDER": str(tmp / "out files"), "LOAD": 0,
                             "LANDUSE_CHANGE": True}},
        "render": {"op": "render", "png": str(tmp / "render.png")},
        "clear": {"op": "clear"},
        "demo": {"op": "run", "alg": "ecovoucher:demo",
                 "params": {"PROVINCES": "北京市", "POLYGONS": 400, "CACHE": str(tmp / "demo data"),
                            "OUT_FOLDER": str(tmp / "out demo"), "LOAD": 0}},
        "render_demo": {"op": "render", "png": str(tmp / "render demo.png")},
        "clear_demo": {"op": "clear"},
        "layers": {"op": "run", "alg": "ecovoucher:run", "layers": _layers(case),
                   "subset": {"COUNTIES": '"adcode" IS NOT NULL'},  # filtered: written out first
                   "params": {**LAYER_VALUES, "OUT_FOLDER": str(tmp / "out 图层"), "LOAD": 2}},
        "bad": {"op": "run", "alg": "ecovoucher:run",
                "params": {"CATALOG": str(bad_catalog), "CONFIG": str(bad_config),
                           "OUT_FOLDER": str(tmp / "out bad"), "LOAD": 0}},
        "cancel": {"op": "run", "alg": "ecovoucher:run", "cancel_on_stage": "zonal",
                   "params": {**files, "OUT_FOLDER": str(tmp / "out cancel"), "LOAD": 0}},
        # the command from the provider's setting, without ECOVOUCHER_EXE
        "setting": {"op": "setting", "command": ENV["ECOVOUCHER_EXE"], "env": None},
        "validate": {"op": "run", "alg": "ecovoucher:validate", "params": files},
        "validate_bad": {"op": "run", "alg": "ecovoucher:validate",
                         "params": {"CATALOG": str(bad_catalog), "CONFIG": str(bad_config)}},
        "vep": {"op": "run", "alg": "ecovoucher:vep",
                "params": {"CONFIG": str(vep), "OUT_FOLDER": str(tmp / "out vep"), "LOAD": 0}},
        "algorithms_en": {"op": "algorithms", "lang": "en"},
    }  # fmt: skip
    plan = tmp / "plan.json"
    plan.write_text(json.dumps(list(steps.values()), ensure_ascii=False), "utf-8")
    report = tmp / "report.json"
    run = subprocess.run(
        [QGIS_PYTHON, str(DRIVER), str(tmp / "profile"), str(plan), str(report)],
        capture_output=True, text=True, timeout=400, env=ENV,
    )  # fmt: skip
    assert run.returncode == 0 and report.exists(), run.stdout + run.stderr
    results = json.loads(report.read_text("utf-8"))
    named = dict(zip(steps, results))
    for name, result in named.items():
        assert "driver_error" not in result, (name, result["driver_error"])
    named["tmp"] = tmp
    named["case"] = case
    return named


def _vouchers(gpkg: Path) -> dict[str, float]:
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers", read_geometry=False)
    return dict(zip(cv["county_id"], cv["voucher_ha"]))


def test_zip_installs_and_starts_as_a_processing_plugin(session):
    install = session["install"]
    assert install["available"] == ["ecovoucher_qgis"]
    assert install["loaded"] and install["started"]
    assert install["module"].startswith(install["plugins_dir"])  # the installed copy ran
    meta = install["metadata"]
    assert meta["hasprocessingprovider"] == "yes" and meta["qgisminimumversion"] == "3.22"


def test_provider_lists_its_algorithms_in_the_language_of_qgis(session):
    zh, en = session["algorithms_zh"], session["algorithms_en"]
    ids = {"ecovoucher:validate", "ecovoucher:run", "ecovoucher:demo", "ecovoucher:vep"}
    assert set(zh["algorithms"]) == ids == set(en["algorithms"])
    assert zh["provider"] == "EcoVoucher 生态券"
    assert zh["algorithms"]["ecovoucher:run"]["name"] == "计算生态券"
    assert en["algorithms"]["ecovoucher:run"]["name"] == "Compute eco-vouchers"
    assert "生态券" in zh["algorithms"]["ecovoucher:run"]["help"]
    assert "static voucher" in en["algorithms"]["ecovoucher:run"]["help"]
    params = en["algorithms"]["ecovoucher:run"]["parameters"]
    assert {"CATALOG", "CONFIG", "OUT_FOLDER", "COUNTIES", "LANDUSE_BASE", "SOCIO"} <= set(params)
    assert zh["algorithms"]["ecovoucher:run"]["parameters"]["OUT_FOLDER"] == "输出文件夹"


def test_run_from_files_equals_the_cli_and_loads_styled_layers(session, tmp_path):
    step = session["files"]
    assert step["ok"], step.get("error")
    gpkg = Path(step["results"]["GPKG"])
    # 甲县 lost 2,500 ha of forest (k = 1) → ΔM = −2500, E = ΔM·G·P = −5000;
    # 乙县 grass → reservoir: E = +2655 (see test_pipeline_end_to_end)
    assert _vouchers(gpkg) == pytest.approx({"110101": -5000.0, "130102": 2655.0})
    case = session["case"]
    cli = subprocess.run(
        [sys.executable, "-m", "pipeline", "-q", "run", "--catalog", str(case / "catalog.yaml"),
         "--config", str(case / "config.yaml"), "--out", str(tmp_path / "cli")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert _vouchers(gpkg) == _vouchers(tmp_path / "cli" / "eco_vouchers.gpkg")
    # the progress stream reached the dialog: stage texts, and the bar at the end
    assert step["progress_max"] == pytest.approx(100.0)
    assert any("zonal" in t for t in step["texts"])
    # loaded: one group with the stored project's tree, every layer valid, map styled
    (group,) = step["tree"]
    assert group["group"].startswith("计算生态券")
    layers = {c["name"]: c for c in group["children"] if "name" in c}
    tables = next(c for c in group["children"] if "group" in c)
    cv = layers["县级生态券 county_vouchers"]
    assert cv["valid"] and cv["features"] == 2 and cv["renderer"] == "graduatedSymbol"
    assert cv["aliases"]["voucher_ha"] == "动态生态券 E (hm²)"
    assert "M_0 2010年标准林面积" in cv["styles"]  # the project's other styles came along
    assert all(t["valid"] for t in tables["children"])
    change = layers["土地利用变化 landuse_change"]  # LANDUSE_CHANGE: the change map, styled
    assert change["valid"] and change["features"] == 2 and change["renderer"] == "graduatedSymbol"
    assert change["aliases"]["sf_change_ha"] == "标准林面积变化 (hm²)"
    assert {t["name"] for t in tables["children"]} >= {
        "各类用地面积 class_areas",
        "汇总与来源 summary",
    }


def test_render_of_the_loaded_layers(session):
    render = session["render"]
    # the change map is drawn over the county vouchers
    assert render["layers"] == ["土地利用变化 landuse_change", "县级生态券 county_vouchers"]
    assert Path(render["png"]).stat().st_size > 2000


def test_run_from_layers_writes_catalog_and_config_and_equals_the_files_run(session):
    step = session["layers"]
    assert step["ok"], step.get("error")
    out = Path(step["results"]["OUT_FOLDER"])
    assert _vouchers(out / "eco_vouchers.gpkg") == _vouchers(
        Path(session["files"]["results"]["GPKG"])
    )
    import yaml

    catalog = yaml.safe_load((out / "catalog.yaml").read_text("utf-8"))
    data = catalog["datasets"]
    # the filtered county layer was written out; the shapefiles are used where they are
    assert data["counties"]["path"] == "inputs/counties.gpkg"
    assert data["landuse"][2010]["path"] == str(session["case"] / "data" / "lu_2010.shp")
    assert data["landuse"][2018]["code_field"] == "gridcode"
    # delimited text typed the codes as integers: written back as 110101, not 110101.0
    socio = (out / "inputs" / "socioeconomic.csv").read_text("utf-8").splitlines()
    assert socio[0] == "code,year,gdp,pop" and socio[1].startswith("110101,2018,")
    config = yaml.safe_load((out / "config.yaml").read_text("utf-8"))
    assert config["national"] == {2018: {"gdp_per_capita_yuan": 50000.0,
                                         "population_density_per_km2": 100.0}}  # fmt: skip
    # the same run again from the command line, as the log says
    rerun = subprocess.run(
        [sys.executable, "-m", "pipeline", "-q", "validate", "--catalog", str(out / "catalog.yaml"),
         "--config", str(out / "config.yaml")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert any("ecovoucher run --catalog" in line for line in step["log"])
    assert any(line == f"Wrote {out / 'catalog.yaml'}" for line in step["log"]), step["log"]
    assert step["added"] == 0  # LOAD = 2: nothing loaded


def test_outputs_pass_the_qgis_check(session, tmp_path):
    check = qgis_check()
    if check is None:
        pytest.skip("shared/tools/qgis_check.py not found")
    gpkg = Path(session["layers"]["results"]["GPKG"])
    run = subprocess.run(
        [QGIS_PYTHON, str(check), str(gpkg), str(tmp_path / "check.png")],
        capture_output=True, text=True, timeout=300, env=ENV,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ALL QGIS CHECKS PASSED" in run.stdout


def test_bad_input_shows_the_clis_message_not_a_traceback(session):
    step = session["bad"]
    assert not step["ok"] and step["error_type"] == "QgsProcessingException"
    assert "dlbm" in step["error"] and "lu_2010.shp" in step["error"]
    assert "Traceback" not in step["error"]
    assert not (session["tmp"] / "out bad" / "eco_vouchers.gpkg").exists()
    bad = session["validate_bad"]
    assert not bad["ok"] and "dlbm" in bad["error"]


def test_validate_with_the_command_from_the_settings(session):
    # Settings ▸ Options ▸ Processing ▸ Providers ▸ EcoVoucher holds the command
    assert session["setting"]["group"] == ["ECOVOUCHER_COMMAND"]
    step = session["validate"]
    assert step["ok"], step.get("error")
    assert any(line.endswith("(settings)") for line in step["log"]), step["log"]
    assert any(line.startswith("OK: 2 counties") for line in step["log"]), step["log"]


def test_cancel_leaves_nothing_behind(session):
    step = session["cancel"]
    assert step["canceled"] and not step["ok"]
    assert "Canceled" in step["error"]
    out = session["tmp"] / "out cancel"
    left = sorted(p.name for p in out.iterdir())
    # canceled as the zonal stage began: no output, no temporary file or staging folder (only
    # the resume cache of finished partitions may stay, by design)
    assert [n for n in left if n != ".ecovoucher-cache"] == [], left
    assert any("[zonal]" in line for line in step["log"])
    assert not any("[export]" in line for line in step["log"])


def test_vep_of_a_site(session):
    step = session["vep"]
    assert step["ok"], step.get("error")
    items = pyogrio.read_dataframe(step["results"]["GPKG"], layer="vep_items", read_geometry=False)
    assert len(items) > 0


def test_demo_runs_and_draws(session):
    step = session["demo"]
    assert step["ok"], step.get("error")
    # 北京市 has 16 county-level districts
    assert len(_vouchers(Path(step["results"]["GPKG"]))) == 16
    render = session["render_demo"]
    # the demo's config clears a market: its trades are drawn over the vouchers
    assert render["layers"] == ["生态券交易 trades", "县级生态券 county_vouchers"]
    assert Path(render["png"]).stat().st_size > 10000
