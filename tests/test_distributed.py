"""The same command on a real dask.distributed cluster: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 give results identical to a local run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyogrio
import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    sched_file = tmp / "scheduler.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    dask = [sys.executable, "-m", "dask"]
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(sched_file)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [*dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                     "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                     "--local-directory", str(tmp / f"w{i}")],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def _tables(gpkg: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for layer in ("county_vouchers", "class_areas", "transitions"):
        df = pyogrio.read_dataframe(gpkg, layer=layer, read_geometry=False)
        out[layer] = df.drop(columns=[c for c in df.columns if c.startswith("geom")])
    return out


def test_scheduler_results_identical_to_local(cluster, case, tmp_path):
    catalog, config = case
    args = ["-q", "run", "--catalog", str(catalog), "--config", str(config), "--no-resume"]
    assert main([*args, "--out", str(tmp_path / "local"), "--workers", "2"]) == 0
    assert main([*args, "--out", str(tmp_path / "remote"), "--scheduler", cluster]) == 0
    local = _tables(tmp_path / "local" / "eco_vouchers.gpkg")
    remote = _tables(tmp_path / "remote" / "eco_vouchers.gpkg")
    for layer in local:
        pd.testing.assert_frame_equal(local[layer], remote[layer], check_exact=True)
    summary = pyogrio.read_dataframe(tmp_path / "remote" / "eco_vouchers.gpkg", layer="summary")
    engine = summary.set_index("key").loc["engine", "text"]
    assert engine == f"dask.distributed scheduler {cluster}"


def test_tiled_run_on_the_scheduler_identical_to_local(cluster, case, tmp_path):
    # tiles hold the land use in the client a tile at a time; the tasks go to the workers
    catalog, config = case
    args = ["-q", "run", "--catalog", str(catalog), "--config", str(config), "--no-resume",
            "--partition-size", "1"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "local"), "--workers", "1"]) == 0
    assert main([*args, "--out", str(tmp_path / "remote"), "--scheduler", cluster,
                 "--tiles", "2"]) == 0  # fmt: skip
    local = _tables(tmp_path / "local" / "eco_vouchers.gpkg")
    remote = _tables(tmp_path / "remote" / "eco_vouchers.gpkg")
    for layer in local:
        pd.testing.assert_frame_equal(local[layer], remote[layer], check_exact=True)


def test_unreachable_scheduler_is_a_clear_error(case, tmp_path, capsys):
    catalog, config = case
    code = main(["run", "--catalog", str(catalog), "--config", str(config),
                 "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:1",
                 "--scheduler-timeout", "3"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the dask scheduler at tcp://127.0.0.1:1" in err
    assert not (tmp_path / "o" / "eco_vouchers.gpkg").exists()
