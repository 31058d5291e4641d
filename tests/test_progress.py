"""``--progress json``: the machine-readable progress stream (README, "QGIS plugin")."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from conftest import write_case
from pipeline.cli import main
from pipeline.run import STAGES
from pipeline.runtime import progress
from pipeline.runtime.engine import Engine


@pytest.fixture(autouse=True)
def _stream_off():
    yield
    progress.to_json(None)


def _events(text: str) -> list[dict]:
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


def test_run_reports_every_stage_in_order_from_0_to_1(tmp_path, capsys):
    catalog, config = write_case(tmp_path / "case")
    code = main(["run", "--progress", "json", "--catalog", str(catalog), "--config", str(config),
                 "--out", str(tmp_path / "out"), "--workers", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    events = _events(err)
    stages = ["config", "ingest", "zonal", "accounting", "export", "report"]
    starts = [e["stage"] for e in events if e["message"] == f"{e['stage']}: {STAGES[e['stage']]}"]
    assert starts == stages
    for i, stage in enumerate(stages, 1):
        mine = [e for e in events if e["stage"] == stage]
        assert mine[0]["fraction"] == 0.0 and mine[-1]["fraction"] == 1.0, mine
        assert all(e["step"] == [i, 6] for e in mine)
        assert all(e["message"].startswith(f"{stage}: ") for e in mine)
        assert all(0.0 <= e["fraction"] <= 1.0 for e in mine)
    # the parallel tasks of the zonal stage: "zonal areas: 1/1 parts" (one partition here)
    assert any(e["message"] == "zonal: zonal areas: 1/1 parts" for e in events)
    # the order of stages is the order of the lines: step never goes back
    steps = [e["step"][0] for e in events]
    assert steps == sorted(steps)
    # no progress bars mixed in
    assert "\r" not in err and "it/s" not in err


def test_market_and_uncertainty_count_as_steps(tmp_path, capsys):
    extra = {"uncertainty": {"draws": 20, "seed": 1}}
    catalog, config = write_case(tmp_path / "case", config_extra=extra)
    assert main(["run", "--progress", "json", "--catalog", str(catalog), "--config", str(config),
                 "--out", str(tmp_path / "out"), "--workers", "1"]) == 0  # fmt: skip
    events = _events(capsys.readouterr().err)
    steps = {e["stage"]: e["step"] for e in events}
    assert steps["uncertainty"] == [5, 7] and steps["report"] == [7, 7]


def test_validate_and_vep_report_their_stages(tmp_path, capsys):
    catalog, config = write_case(tmp_path / "case")
    assert main(["validate", "--progress", "json", "--catalog", str(catalog),
                 "--config", str(config)]) == 0  # fmt: skip
    events = _events(capsys.readouterr().err)
    done = [e["stage"] for e in events if e["message"] == f"{e['stage']}: done"]
    assert done == ["config", "ingest", "overlaps"]
    assert events[-1]["step"] == [3, 3]
    vep = Path(__file__).parents[1] / "configs" / "vep" / "niujiacun.yaml"
    assert (
        main(["vep", "--progress", "json", "--config", str(vep), "--out", str(tmp_path / "v")]) == 0
    )
    events = _events(capsys.readouterr().err)
    assert [(e["stage"], e["fraction"]) for e in events] == [("vep", 0.0), ("vep", 1.0)]


def test_without_json_nothing_is_written(tmp_path, capsys):
    catalog, config = write_case(tmp_path / "case")
    assert main(["-q", "validate", "--catalog", str(catalog), "--config", str(config)]) == 0
    assert _events(capsys.readouterr().err) == []


def test_a_stage_reports_at_most_every_interval_but_always_its_start_and_end(monkeypatch):
    out = io.StringIO()
    progress.to_json(out)
    progress.plan(["a", "b"])
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    progress.stage_started("b", "second")  # forced
    for i in range(1, 10):  # nine tasks finish within 0.09 s: one report at most
        now[0] += 0.01
        progress.advance(i, 10, f"{i}/10")
    now[0] += progress.MIN_INTERVAL  # later: reported
    progress.advance(9, 10, "9/10 again")
    progress.advance(10, 10, "10/10")  # the last task: forced
    progress.stage_done("b")
    events = _events(out.getvalue())
    assert [(e["fraction"], e["message"]) for e in events] == [
        (0.0, "b: second"), (0.9, "b: 9/10 again"), (1.0, "b: 10/10"), (1.0, "b: done"),
    ]  # fmt: skip
    assert all(e["step"] == [2, 2] for e in events)


def test_engine_reports_each_finished_task_from_its_threads():
    out = io.StringIO()
    progress.to_json(out)
    progress.stage_started("zonal", "x")
    engine = Engine(workers=2, progress=False)
    results = engine.map(lambda i: i * i, [(i,) for i in range(6)], desc="squares")
    assert results == [0, 1, 4, 9, 16, 25]
    events = _events(out.getvalue())
    assert events[-1] == {"stage": "zonal", "fraction": 1.0, "message": "zonal: squares: 6/6 parts"}
