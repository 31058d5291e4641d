"""The QGIS plugin's standard-library parts, without QGIS: the YAML it writes, finding the
command, the progress stream, the command's error message, and Cancel stopping a whole process
group. (The plugin inside a real QGIS: tests/test_qgis_plugin.py.)"""

from __future__ import annotations

import importlib
import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "qgis_plugin"))
runner = importlib.import_module("ecovoucher_qgis.runner")
yamlout = importlib.import_module("ecovoucher_qgis.yamlout")
texts = importlib.import_module("ecovoucher_qgis.texts")


class Feedback:
    """The part of QgsProcessingFeedback the runner uses; cancels after ``cancel_after`` events
    of the progress stream."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.calls: list[tuple[str, object]] = []
        self.cancel_after = cancel_after
        self.events = 0

    def isCanceled(self) -> bool:
        return self.cancel_after is not None and self.events >= self.cancel_after

    def setProgress(self, p: float) -> None:
        self.events += 1
        self.calls.append(("progress", p))

    def __getattr__(self, name: str):
        return lambda *a: self.calls.append((name, a[0] if a else None))


def test_yaml_round_trips_through_pyyaml():
    data = {
        "notes": 'quotes " and \\ backslash, colon: yes, # hash, 生态券 “全角”',
        "datasets": {
            "counties": {"path": "C:\\数据\\县界.shp", "layer": "no", "province_field": None},
            "landuse": {2010: {"path": "a b/lu 2010.shp", "code_field": "0301"}},
        },
        "study_area": {"provinces": ["北京市", "河北省"], "county_ids": ["110101", "0012"]},
        "national": {2018: {"gdp_per_capita_yuan": 65534.0, "population_density_per_km2": 1e-05}},
        "tiny": 1e-300,
        "huge": 1e22,
        "flag": True,
        "ctrl": "tab\tbell\x07del\x7f",
        "yes": "on",
        "empty": {},
    }
    text = yamlout.dump(data, "header line\nsecond")
    assert text.startswith("# header line\n# second\n")
    assert yaml.safe_load(text) == data


@pytest.mark.parametrize(
    ("value", "written"),
    [(1e-05, "1.0e-05"), (2.5, "2.5"), (1e22, "1.0e+22"), (10000.0, "10000.0"), (3, "3")],
)
def test_floats_always_read_back_as_numbers(value, written):
    # PyYAML (YAML 1.1) reads 1e-05 as text: a float is always written with a decimal point
    assert yamlout.scalar(value) == written
    assert yaml.safe_load(f"v: {written}")["v"] == value


def test_command_from_environment_then_settings_then_path(tmp_path, monkeypatch):
    exe = tmp_path / "bin" / "ecovoucher"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\necho ecovoucher 9.9\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": str(exe.parent), runner.ENV_VAR: "/opt/py env/bin/python -m pipeline"}
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    found = runner.candidates("/x/ecovoucher --flag", env, plugin_dir=tmp_path)
    assert found[:3] == [
        (runner.ENV_VAR, ["/opt/py", "env/bin/python", "-m", "pipeline"]),
        ("settings", ["/x/ecovoucher", "--flag"]),
        ("PATH", [str(exe)]),
    ]
    # an existing path with a space is one program, not split
    assert runner.split_command(str(exe)) == [str(exe)]
    assert runner.split_command(f"'{tmp_path}/a b/python' -m pipeline") == [
        f"{tmp_path}/a b/python", "-m", "pipeline",
    ]  # fmt: skip


def test_command_found_in_the_checkout_the_plugin_was_built_from(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    exe = checkout / ".venv" / "bin" / "ecovoucher"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\necho ecovoucher 0.1.0\n")
    exe.chmod(0o755)
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "build_info.json").write_text(json.dumps({"source": str(checkout)}))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    found = runner.candidates("", {"PATH": ""}, plugin_dir=plugin)
    assert found == [("found", [str(exe)])]


def test_find_command_skips_what_does_not_run():
    env = {runner.ENV_VAR: "/nonexistent/ecovoucher", "PATH": ""}
    command, where, version = runner.find_command(
        f"{sys.executable} -m pipeline", env
    )  # the settings' command runs; the environment's does not exist
    assert (where, command[-2:]) == ("settings", ["-m", "pipeline"])
    assert version.startswith("ecovoucher ")
    with pytest.raises(runner.CommandNotFound, match="nonexistent"):
        runner.find_command("", {runner.ENV_VAR: "/nonexistent/ecovoucher", "PATH": ""})


def test_clean_env_drops_qgis_python_and_proj():
    env = runner.clean_env({"PYTHONPATH": "/usr/share/qgis/python", "PROJ_LIB": "/usr/share/proj",
                            "PATH": "/bin", "LANG": "zh_CN.UTF-8"})  # fmt: skip
    assert env["PATH"] == "/bin" and env["LANG"] == "zh_CN.UTF-8"
    assert "PYTHONPATH" not in env and "PROJ_LIB" not in env
    assert env["PYTHONIOENCODING"] == "utf-8" and env["PYTHONUNBUFFERED"] == "1"


def test_progress_events_and_overall_percent():
    line = '{"stage": "zonal", "fraction": 0.5, "message": "zonal 8/16", "step": [2, 4]}'
    event = runner.parse_progress(line)
    assert event["stage"] == "zonal"
    # stage 2 of 4 half done: (1 + 0.5) / 4 = 37.5 %
    assert runner.overall_percent(event) == 37.5
    assert runner.overall_percent({"fraction": 0.25}) == 25.0
    assert runner.overall_percent({"fraction": 7, "step": [4, 4]}) == 100.0
    for other in ("12:00:01 INFO    ingest done", "{not json", '{"stage": "x"}', "[1, 2]"):
        assert runner.parse_progress(other) is None


def test_error_text_is_the_commands_paragraph():
    stderr = [
        "12:00:00 INFO    config     done in   0.00 s",
        '{"stage": "ingest", "fraction": 0.0, "message": "reading"}',
        "error: 2 problems with the input:",
        "  1. counties (c.shp), field 'adcode': not found. Fields: code, name",
        '{"stage": "ingest", "fraction": 1.0, "message": "x"}',
        "  2. landuse 2010 (lu.shp): missing",
    ]
    assert runner.error_text(stderr, 2) == (
        "2 problems with the input:\n"
        "  1. counties (c.shp), field 'adcode': not found. Fields: code, name\n"
        "  2. landuse 2010 (lu.shp): missing"
    )
    assert runner.error_text(["boom"], 1) == "boom"
    assert "status 3" in runner.error_text([], 3)


FAKE = r"""
import json, os, signal, subprocess, sys, time
out = sys.argv[1]
partial = os.path.join(out, ".partial-%d-x" % os.getpid())
def stop(signum, frame):
    os.remove(partial)
    print("terminated; no output was written", file=sys.stderr)
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
open(partial, "w").close()
# a child in the same process group, as a wrapper's command or a worker would be
child = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
    "open(sys.argv[1], 'w').close()\ntime.sleep(60)", os.path.join(out, "child-started")])
print("12:00:00 WARNING land use covers 98 % of 1 county", file=sys.stderr, flush=True)
for i in range(200):
    print(json.dumps({"stage": "zonal", "fraction": i / 200, "message": "zonal %d/200" % i,
                      "step": [2, 5]}), file=sys.stderr, flush=True)
    time.sleep(0.05)
os.replace(partial, os.path.join(out, "done"))
print(os.path.join(out, "done"))
"""


@pytest.mark.skipif(os.name == "nt", reason="process groups and SIGTERM: POSIX")
def test_cancel_stops_the_whole_process_group_cleanly(tmp_path):
    script = tmp_path / "fake_ecovoucher.py"
    script.write_text(textwrap.dedent(FAKE))
    feedback = Feedback(cancel_after=5)
    t0 = time.monotonic()
    outcome = runner.run([sys.executable, str(script)], [str(tmp_path)], feedback)
    assert time.monotonic() - t0 < 8  # not the 10 s the fake takes to finish
    assert outcome.canceled and outcome.returncode == runner.TERMINATED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child-started", "fake_ecovoucher.py"]
    with pytest.raises(runner.Canceled):
        runner.check(outcome)
    kinds = [k for k, _ in feedback.calls]
    assert kinds[0] == "pushCommandInfo"
    assert ("pushWarning", "land use covers 98 % of 1 county") in feedback.calls
    # the dialog's text follows every new message, the log gets one line for the stage
    texts = [v for k, v in feedback.calls if k == "setProgressText"]
    assert texts[:2] == ["zonal 0/200", "zonal 1/200"]
    assert [v for k, v in feedback.calls if k == "pushInfo" and v.startswith("[")] == [
        "[zonal] zonal 0/200"
    ]
    # stage 2 of 5 at 0/200: 20 %
    assert next(v for k, v in feedback.calls if k == "progress") == 20.0


def test_failure_carries_the_commands_message(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text(
        "import sys\nprint('error: counties (c.shp): no field adcode; fields: code', "
        "file=sys.stderr)\nsys.exit(2)\n"
    )
    outcome = runner.run([sys.executable, str(script)], [], Feedback())
    with pytest.raises(runner.CommandFailed) as info:
        runner.check(outcome)
    assert str(info.value) == "counties (c.shp): no field adcode; fields: code"
    assert info.value.returncode == 2


def test_every_text_has_both_languages():
    for key, (en, zh) in {**texts.TEXTS, **texts.HELP}.items():
        assert en.strip() and zh.strip(), key
        # the same placeholders in both languages
        assert sorted(_fields(en)) == sorted(_fields(zh)), key
    assert texts.text("run", "zh") == "计算生态券"
    assert texts.text("run", "en") == "Compute eco-vouchers"


def _fields(s: str) -> list[str]:
    import string

    return [f for _, f, _, _ in string.Formatter().parse(s) if f]


def test_the_plugins_legends_are_the_shipped_ones():
    from pipeline.settings.legends import DEFAULT_LEGEND, SHIPPED

    assert texts.LEGENDS == SHIPPED and texts.LEGENDS[0] == DEFAULT_LEGEND
