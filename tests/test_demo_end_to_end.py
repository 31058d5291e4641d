"""`ecovoucher demo` on a small subset (Beijing, 5,000 polygons a year), checked against an
independent geopandas.overlay computation (scripts/overlay_baseline.py) and the transfer-matrix
identity M_t − M_0 = Σ area(from→to) · (k_to − k_from)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

from pipeline.cli import main
from pipeline.settings.coefficients import load_coefficients
from pipeline.settings.config import DEFAULT_COEFFICIENTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def beijing(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("北京 demo")
    cache, out = tmp / "cache", tmp / "out"
    argv = ["-q", "demo", "--cache", str(cache), "--out", str(out), "--provinces", "北京市"]
    assert main([*argv, "--polygons", "5000", "--workers", "2"]) == 0
    return cache, out / "eco_vouchers.gpkg"


def test_demo_subset_has_16_named_counties_with_demand_and_supply(beijing):
    _, gpkg = beijing
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers")
    assert len(cv) == 16
    assert {"东城区", "海淀区", "密云区", "延庆区"} <= set(cv["name"])
    assert set(cv["province"]) == {"北京市"}
    assert {"demand", "supply"} <= set(cv["role"])
    np.testing.assert_allclose(cv["coverage_base"], 1.0, rtol=1e-9)
    text = pyogrio.read_dataframe(gpkg, layer="summary").set_index("key").loc["data_notes", "text"]
    assert "SYNTHETIC" in text


def test_transfer_matrix_identity(beijing):
    _, gpkg = beijing
    k = load_coefficients(DEFAULT_COEFFICIENTS)
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers", read_geometry=False)
    tr = pyogrio.read_dataframe(gpkg, layer="transitions")
    delta = tr["area_ha"] * (tr["to_code"].map(k.of) - tr["from_code"].map(k.of))
    by_county = delta.groupby(tr["county_id"]).sum()
    expected = cv.set_index("county_id")["static_voucher_ha"]
    np.testing.assert_allclose(by_county[expected.index], expected, rtol=1e-9, atol=1e-6)
    # row sums of the matrix are the base year's class areas
    ca = pyogrio.read_dataframe(gpkg, layer="class_areas")
    base = ca[ca["year"] == 2010].set_index(["county_id", "class_code"])["area_ha"]
    rows = tr.groupby(["county_id", "from_code"])["area_ha"].sum()
    np.testing.assert_allclose(rows[base.index], base, rtol=1e-9)


def test_matches_independent_geopandas_overlay(beijing, tmp_path):
    cache, gpkg = beijing
    csv = tmp_path / "overlay.csv"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "overlay_baseline.py"), "--catalog",
         str(cache / "catalog.yaml"), "--config", str(cache / "config.yaml"), "--out", str(csv)],
        check=True,
    )  # fmt: skip
    ref = pd.read_csv(csv, dtype={"county_id": str}).set_index("county_id").sort_index()
    ours = pyogrio.read_dataframe(gpkg, layer="county_vouchers", read_geometry=False)
    ours = ours.set_index("county_id").loc[ref.index]
    for col in ["area_km2", "sf_base_ha", "sf_target_ha", "gdp_coef", "pop_coef", "voucher_ha"]:
        # atol: an unchanged county is exactly 0 here, ~1e-11 ha of rounding noise in the overlay
        np.testing.assert_allclose(ours[col], ref[col], rtol=1e-6, atol=1e-6, err_msg=col)


def _layers(gpkg: Path) -> set[str]:
    return {name for name, _ in pyogrio.list_layers(gpkg)}


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_killed_run_leaves_no_partial_output_and_rerun_succeeds(beijing, tmp_path, sig):
    import signal
    import time

    cache, _ = beijing
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline", "-q", "run", "--catalog", str(cache / "catalog.yaml"),
           "--config", str(cache / "config.yaml"), "--out", str(out), "--workers", "2"]  # fmt: skip
    for delay in (0.3, 0.8, 1.3, 1.8, 2.5):
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)
        time.sleep(delay)
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=60)
        if sig == "SIGTERM":
            # 143: the handler unwound the run; −15: killed during start-up, before main() ran
            assert proc.returncode in (0, 143, -15), err.decode()
            assert not list(out.glob(".partial-*")) if out.exists() else True
        gpkg = out / "eco_vouchers.gpkg"
        if gpkg.exists():  # only ever a complete file
            assert {"county_vouchers", "class_areas", "summary"} <= _layers(gpkg)
    assert subprocess.run(cmd, cwd=ROOT).returncode == 0
    assert [p.name for p in out.iterdir() if p.name.startswith(".partial-")] == []
    assert len(pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="county_vouchers")) == 16


def test_sigterm_inside_the_import_machinery_is_delivered_again(monkeypatch):
    import signal

    import pipeline.cli as cli

    # a frame as if the main thread were in importlib's bootstrap code when the signal came
    frozen = {}
    exec(
        compile("import sys\nf = sys._getframe()", "<frozen importlib._bootstrap>", "exec"), frozen
    )
    sent = []
    monkeypatch.setattr(cli.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    cli._terminate(signal.SIGTERM, frozen["f"])  # returns: no exception inside the import lock
    deadline = time.time() + 5
    while not sent and time.time() < deadline:
        time.sleep(0.01)
    assert sent == [(os.getpid(), signal.SIGTERM)]  # delivered again, 50 ms later
    with pytest.raises(cli.Terminated):  # anywhere else: unwinds at once
        cli._terminate(signal.SIGTERM, sys._getframe())
