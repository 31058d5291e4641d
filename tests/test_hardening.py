"""Issue 18, through the command line: nothing lost, nothing executed, nothing silently wrong.

One or more tests per defect of the issue, written against ``ecovoucher run`` / ``vep`` and the
files they leave, on the two-county case of conftest (each run ~1 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyogrio
import pytest
import yaml

from conftest import write_case
from pipeline.cli import main
from pipeline.runtime.lock import FolderLock

REPO = Path(__file__).resolve().parents[1]
#: what a run writes in --out (README, "What you get")
OUTPUTS = {"eco_vouchers.gpkg", "eco_vouchers.qgz", "eco_vouchers_tables.xlsx", "figures",
           "tables", "report.html"}  # fmt: skip


def _run(catalog, config, out, *extra) -> tuple[int, str]:
    argv = ["run", "--catalog", str(catalog), "--config", str(config), "--out", str(out), *extra]
    return main(argv), ""


def _cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _snapshot(out: Path) -> dict[str, str]:
    """Every visible file under ``out`` and its sha256 (hidden working folders left out)."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts)
    }


def _tables(out: Path) -> dict[str, bytes]:
    """The CSV tables: their bytes depend on the inputs alone (no dates), so two runs of the same
    inputs give the same bytes, and a price change changes them."""
    return {p.name: p.read_bytes() for p in sorted((out / "tables").glob("*.csv"))}


def _set(config: Path, **values) -> None:
    cfg = yaml.safe_load(config.read_text("utf-8"))
    cfg.update(values)
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), "utf-8")


def _price_in_gpkg(out: Path) -> float:
    """q_t as the GeoPackage's provenance records it (the config text of its run)."""
    summary = pyogrio.read_dataframe(out / "eco_vouchers.gpkg", layer="summary")
    text = summary.loc[summary["key"] == "config_text", "text"].iloc[0]
    return float(yaml.safe_load(text)["price_yuan_per_ha"])


@pytest.fixture(scope="module")
def _done_once(tmp_path_factory):
    base = tmp_path_factory.mktemp("done")
    catalog, config = write_case(base / "case")
    out = base / "out"
    assert main(["-q", "run", "--catalog", str(catalog), "--config", str(config), "--out",
                 str(out)]) == 0  # fmt: skip
    _set(config, price_yuan_per_ha=60000)
    clean = base / "clean"
    assert main(["-q", "run", "--catalog", str(catalog), "--config", str(config), "--out",
                 str(clean), "--no-resume"]) == 0  # fmt: skip
    return base, _tables(clean)


@pytest.fixture
def done(_done_once, tmp_path):
    """A finished run at price 50,000 yuan/ha in ``out`` (its config now says 60,000), and the
    tables a clean run at 60,000 gives."""
    base, new_tables = _done_once
    shutil.copytree(base / "case", tmp_path / "case")
    shutil.copytree(base / "out", tmp_path / "out")
    out = tmp_path / "out"
    return (
        tmp_path / "case" / "catalog.yaml",
        tmp_path / "case" / "config.yaml",
        out,
        _snapshot(out),
        new_tables,
    )


# ---------------------------------------------------------------------------------- defect 1


class _InterruptAt(logging.Filter):
    """Raise KeyboardInterrupt (Ctrl-C) when the pipeline logs '<stage> done'."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.stage = stage

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith(self.stage) and "done in" in text:
            raise KeyboardInterrupt
        return True


@pytest.mark.parametrize("stage", ["config", "ingest", "zonal", "accounting", "export", "report"])
def test_interrupt_at_every_stage_leaves_the_earlier_output_whole(done, capsys, stage):
    catalog, config, out, before, _ = done
    interrupt = _InterruptAt(stage)
    logger = logging.getLogger("pipeline")
    logger.addFilter(interrupt)
    try:
        code, err = _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out", out)
    finally:
        logger.removeFilter(interrupt)
    assert code == 130
    assert "earlier output" in err and "unchanged" in err  # and true:
    assert _snapshot(out) == before
    assert _price_in_gpkg(out) == 50000
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(OUTPUTS)
    assert not [p for p in out.iterdir() if p.name.startswith((".partial", ".ecovoucher-staging"))]


def test_sigterm_after_export_keeps_old_or_gives_whole_new_output(done):
    catalog, config, out, before, new_tables = done
    cmd = [sys.executable, "-m", "pipeline", "run", "--catalog", str(catalog), "--config",
           str(config), "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=REPO)
    for line in proc.stderr:
        if "export" in line and "done in" in line:
            proc.terminate()
            break
    err = proc.stderr.read()
    code = proc.wait(60)
    if code == 143:  # stopped in time: the old output, whole
        assert "unchanged" in err
        assert _snapshot(out) == before
    else:  # finished first: the new output, whole
        assert code == 0
        assert _tables(out) == new_tables and _price_in_gpkg(out) == 60000


# ---------------------------------------------------------------------------------- disk full


def _mount_tmpfs(folder: Path, size_kb: int) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)],
                         capture_output=True)  # fmt: skip
    return res.returncode == 0


@pytest.mark.parametrize("free_kb", [0, 50, 200, 400, 700, 1000])
def test_disk_full_keeps_the_earlier_output_and_says_so(tmp_path, capsys, free_kb):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, 3072):
        pytest.skip("cannot mount a tmpfs here (needs root on Linux); see the ENOSPC test below")
    try:
        catalog, config = write_case(tmp_path / "case")
        out = disk / "out"
        assert _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out", out,
                    "--no-resume")[0] == 0  # fmt: skip
        before = _snapshot(out)
        st = os.statvfs(disk)
        filler = max(st.f_bavail * st.f_frsize - free_kb * 1024, 0)
        with (disk / "filler").open("wb") as f, contextlib.suppress(OSError):
            f.write(b"\0" * filler)
        _set(config, price_yuan_per_ha=60000)
        code, err = _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out", out,
                         "--no-resume")  # fmt: skip
        if code == 0:
            assert free_kb > 0  # with no space left at all, the run cannot have succeeded
            assert _price_in_gpkg(out) == 60000
        else:
            assert code == 2, err
            assert "space" in err and str(disk) in err and "unchanged" in err
            assert _snapshot(out) == before
        assert not [p for p in out.iterdir() if p.name.startswith(".ecovoucher-staging")]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# ---------------------------------------------------------------------------------- defect 2


def test_two_runs_into_one_folder_end_consistent(done):
    catalog, config, out, _, new_tables = done
    cmd = [sys.executable, "-m", "pipeline", "-q", "run", "--catalog", str(catalog), "--config",
           str(config), "--out", str(out)]  # fmt: skip
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert any(code == 0 for code, _ in results), results
    for code, err in results:
        if code != 0:  # refused, naming the other run
            assert code == 2 and "another ecovoucher run" in err and "pid" in err, err
    assert _tables(out) == new_tables and _price_in_gpkg(out) == 60000


def test_second_run_waits_for_the_first_with_wait(done, capsys):
    catalog, config, out, _, new_tables = done
    first = FolderLock(out).acquire()  # another run, still writing
    threading.Timer(1.0, first.release).start()
    t0 = time.perf_counter()
    code, err = _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out", out,
                     "--wait", "60")  # fmt: skip
    assert code == 0, err
    assert time.perf_counter() - t0 >= 1.0
    assert _tables(out) == new_tables


# ---------------------------------------------------------------------------------- defect 3


def test_planted_cache_files_are_not_executed(done, capsys, tmp_path):
    catalog, config, out, _, new_tables = done
    assert _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out", out)[0] == 0
    marker = tmp_path / "executed"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    planted = 0
    for entry in (out / ".ecovoucher-cache").rglob("*"):
        if entry.is_file() and entry.suffix in (".npz", ".pkl"):
            entry.write_bytes(pickle.dumps(Boom()))
            entry.with_suffix(".pkl").write_bytes(pickle.dumps(Boom()))
            planted += 1
    assert planted
    code, err = _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out", out)
    assert code == 0
    assert not marker.exists()
    assert "ignored and recomputed" in err
    assert _tables(out) == new_tables


def test_swapped_cache_entries_are_foreign_and_recomputed(done, capsys):
    catalog, config, out, _, new_tables = done
    argv = ["run", "--catalog", catalog, "--config", config, "--out", out, "--partition-size", 1]
    assert _cli(capsys, *argv)[0] == 0
    a, b = sorted((out / ".ecovoucher-cache").rglob("zonal-*.npz"))  # one per county
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())  # each entry now holds the other county's areas
    b.write_bytes(a_bytes)
    code, err = _cli(capsys, *argv)
    assert code == 0 and err.count("a foreign entry") == 2
    assert _tables(out) == new_tables


# ---------------------------------------------------------------------------------- defect 10: --out


def test_output_name_taken_by_a_folder_is_exit_2_before_any_work(tmp_path, capsys):
    catalog, config = write_case(tmp_path)
    (tmp_path / "out" / "eco_vouchers.gpkg").mkdir(parents=True)
    code, err = _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out",
                     tmp_path / "out")  # fmt: skip
    assert code == 2 and "eco_vouchers.gpkg: is a folder" in err
    assert "ingest" not in err  # refused before any work
    assert (tmp_path / "out" / "eco_vouchers.gpkg").is_dir()


@pytest.mark.parametrize("out", ["/", "/usr"])
def test_system_folder_as_out_is_refused(tmp_path, capsys, out):
    catalog, config = write_case(tmp_path)
    code, err = _cli(capsys, "run", "--catalog", catalog, "--config", config, "--out", out)
    assert code == 2 and "--out" in err
    assert not Path(out, "eco_vouchers.gpkg").exists()
