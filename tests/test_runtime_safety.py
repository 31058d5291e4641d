"""The output-folder lock, the staged output transaction and the safe YAML loader (issue 18)."""

from __future__ import annotations

import errno
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.errors import InputError
from pipeline.runtime import cache_file, staging
from pipeline.runtime.lock import LOCK_NAME, FolderLock, FolderLocked, read_holder
from pipeline.runtime.safe_yaml import MAX_DEPTH, MAX_NODES, load_yaml
from pipeline.runtime.staging import JOURNAL_NAME, OutputTransaction, check_out_dir, recover

# ----------------------------------------------------------------------------------------------
# safe YAML


def test_safe_yaml_reads_an_ordinary_file_as_pyyaml_does():
    text = (
        "years: {base: 2010, target: 2018}\n"
        "base: &b {price: 1.5, ids: ['110101', 130102]}\n"
        "other:\n  <<: *b\n  price: 2.0\n"
        "list: [1, 2.5, null, true, text]\n"
    )
    assert load_yaml(text, "config c.yaml") == yaml.safe_load(text)


def test_duplicate_key_names_the_key_and_both_lines():
    text = "landuse:\n  2010: a.shp\n  2018: b.shp\n  2010: c.shp\n"
    with pytest.raises(InputError) as e:
        load_yaml(text, "catalog cat.yaml")
    msg = str(e.value)
    assert "catalog cat.yaml, line 4" in msg
    assert "'2010'" in msg and "line 2" in msg and "line 4" in msg


def test_a_key_written_as_number_and_as_text_is_a_duplicate_too():
    with pytest.raises(InputError, match="'2010' is given twice"):
        load_yaml("2010: a\n'2010': b\n", "catalog")


def test_merge_keys_may_be_overridden():
    assert load_yaml("a: &a {x: 1}\nb: {<<: *a, x: 2}\n", "c") == {"a": {"x": 1}, "b": {"x": 2}}


def test_non_scalar_key_is_refused():
    with pytest.raises(InputError, match=r"line 1.*keys must be plain values"):
        load_yaml("? [a, b]\n: 1\n", "config")


def test_deep_nesting_is_refused_quickly():
    text = "a: " + "[" * 3000 + "]" * 3000 + "\n"  # PyYAML alone: RecursionError
    t0 = time.perf_counter()
    with pytest.raises(InputError, match=f"more than {MAX_DEPTH} levels"):
        load_yaml(text, "config")
    assert time.perf_counter() - t0 < 2


def test_nesting_just_under_the_limit_is_accepted():
    depth = MAX_DEPTH - 1  # the top mapping is one level
    assert load_yaml("a: " + "[" * depth + "]" * depth + "\n", "c") is not None


def test_alias_bomb_is_refused_quickly_with_a_short_message():
    # 9 levels of 10 aliases each: 10**9 values from a file of under 1 KB
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("study_area: {county_ids: *a9}")
    t0 = time.perf_counter()
    with pytest.raises(InputError) as e:
        load_yaml("\n".join(lines), "config c.yaml")
    assert time.perf_counter() - t0 < 2
    assert f"{MAX_NODES:,}" in str(e.value) and len(str(e.value)) < 400


def test_aliases_within_the_limit_are_fine():
    assert load_yaml("a: &a [1, 2]\nb: [*a, *a]\n", "c") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


def test_recursive_alias_is_refused():
    with pytest.raises(InputError, match="refers to a list or mapping that holds it"):
        load_yaml("a: &a [1, *a]\n", "c")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.0e+400"])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(InputError, match=r"line 2.*not a finite number"):
        load_yaml(f"a: 1\nprice_yuan_per_ha: {value}\n", "config")


def test_huge_integer_is_refused_and_ids_may_be_quoted():
    with pytest.raises(InputError, match="too large"):
        load_yaml("years: 1" + "0" * 400 + "\n", "vep")
    assert load_yaml("id: '1" + "0" * 30 + "'\n", "c") == {"id": "1" + "0" * 30}


def test_python_tags_are_still_refused():
    with pytest.raises(yaml.YAMLError):
        load_yaml("a: !!python/object/apply:os.system ['id']\n", "c")


# ----------------------------------------------------------------------------------------------
# the lock


def test_second_lock_is_refused_naming_the_first(tmp_path):
    with FolderLock(tmp_path) as first:
        with pytest.raises(FolderLocked) as e:
            FolderLock(tmp_path).acquire()
        msg = str(e.value)
        h = first.holder
        assert h.host in msg and f"pid {h.pid}" in msg and h.started in msg
        assert e.value.exit_code == 2
    assert not (tmp_path / LOCK_NAME).exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # claim files gone too
    with FolderLock(tmp_path):  # free again
        pass


def test_waiting_lock_gets_the_folder_when_the_first_run_ends(tmp_path):
    first = FolderLock(tmp_path).acquire()
    threading.Timer(0.3, first.release).start()
    t0 = time.perf_counter()
    with FolderLock(tmp_path, wait=10):
        assert time.perf_counter() - t0 >= 0.25


def test_lock_of_a_live_run_on_another_host_is_respected_whatever_its_pid(tmp_path):
    # another node: its pid means nothing here (here it names no process at all), but its lease
    # was renewed just now, so the folder is taken; kill(pid, 0) would have called it dead
    other = {"host": "node-17", "pid": 999_999_999, "started": "2026-01-01T00:00:00+00:00",
             "token": "t", "lease": 60.0}  # fmt: skip
    (tmp_path / LOCK_NAME).write_text(json.dumps(other))
    with pytest.raises(FolderLocked, match="host node-17, pid 999999999"):
        FolderLock(tmp_path).acquire()


def test_lock_whose_lease_expired_is_broken(tmp_path, caplog):
    other = {"host": "node-17", "pid": os.getpid(), "started": "x", "token": "t", "lease": 60.0}
    lock = tmp_path / LOCK_NAME
    lock.write_text(json.dumps(other))
    old = time.time() - 61  # not renewed for 61 s > its 60 s lease, although the pid is alive
    os.utime(lock, (old, old))
    with FolderLock(tmp_path) as mine:
        assert read_holder(lock).token == mine.holder.token
    assert "broke an abandoned lock" in caplog.text


def test_heartbeat_renews_the_lease_and_notices_a_takeover(tmp_path):
    lock = FolderLock(tmp_path, lease=0.4).acquire()
    try:
        past = time.time() - 100
        os.utime(lock.path, (past, past))
        time.sleep(0.3)  # a beat every 0.1 s
        assert time.time() - lock.path.stat().st_mtime < 5
        lock.check()  # still ours
        stolen = json.loads(lock.path.read_text()) | {"token": "someone else"}
        lock.path.write_text(json.dumps(stolen))
        time.sleep(0.3)
        assert lock.lost
        with pytest.raises(InputError, match="taken over by another run"):
            lock.check()
    finally:
        lock.release()
    assert lock.path.exists()  # the other run's lock is left alone


def test_lock_between_two_processes(tmp_path):
    code = (
        "import sys, time; from pipeline.runtime.lock import FolderLock\n"
        "with FolderLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(30)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLocked, match=f"pid {proc.pid}"):
            FolderLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    # killed without releasing (kill -9, the OOM killer): on the same machine and in the same PID
    # namespace the lock names a process that is gone, so it is broken at once
    with FolderLock(tmp_path):
        pass


def test_lock_of_a_dead_process_elsewhere_waits_for_its_lease(tmp_path):
    # the same pid and host name, but another boot or PID namespace (another container): the pid
    # proves nothing there, only the lease counts
    other = FolderLock(tmp_path).holder.__dict__ | {"pid": 999_999_999, "node": "other-boot:1"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(other))
    with pytest.raises(FolderLocked):
        FolderLock(tmp_path).acquire()
    mine = FolderLock(tmp_path).holder.__dict__ | {"pid": 999_999_999, "token": "dead"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(mine))  # same node, process gone
    with FolderLock(tmp_path):
        pass


# ----------------------------------------------------------------------------------------------
# the output folder check


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
@pytest.mark.parametrize("folder", ["/", "/usr", "/usr/local/share/x", "/etc/ecovoucher", "/tmp"])
def test_system_folders_are_refused(folder):
    with pytest.raises(InputError, match="--out") as e:
        check_out_dir(Path(folder))
    assert e.value.exit_code == 2
    assert not Path(folder, "eco_vouchers.gpkg").exists()


def test_out_dir_checks(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_out_dir(f)
    out = tmp_path / "a" / "b"
    assert check_out_dir(out, {"eco_vouchers.gpkg": False}, create=True) == out and out.is_dir()
    (out / "eco_vouchers.gpkg").mkdir()
    (out / "figures").write_text("not a folder")
    with pytest.raises(InputError) as e:
        check_out_dir(out, {"eco_vouchers.gpkg": False, "figures": True})
    msg = str(e.value)
    assert "eco_vouchers.gpkg: is a folder" in msg and "figures: is a file" in msg


# ----------------------------------------------------------------------------------------------
# the output transaction

OWNED = {"result.gpkg", "report.html", "figures"}


def _old_output(out: Path) -> None:
    out.mkdir(exist_ok=True)
    (out / "result.gpkg").write_text("old gpkg")
    (out / "report.html").write_text("old report")
    (out / "figures").mkdir()
    (out / "figures" / "map_2015.png").write_text("old map")
    (out / "mine.txt").write_text("the user's own file")


def _stage_new(t: OutputTransaction) -> None:
    (t.staging / "result.gpkg").write_text("new gpkg")
    (t.staging / "figures").mkdir()
    (t.staging / "figures" / "map_2018.png").write_text("new map")


def _listing(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()
    }


OLD = {
    "figures/map_2015.png": "old map",
    "mine.txt": "the user's own file",
    "report.html": "old report",
    "result.gpkg": "old gpkg",
}
NEW = {
    "figures/map_2018.png": "new map",
    "mine.txt": "the user's own file",
    "result.gpkg": "new gpkg",
}


def test_commit_replaces_owned_entries_and_leaves_other_files(tmp_path):
    _old_output(tmp_path)
    with OutputTransaction(tmp_path, OWNED) as t:
        _stage_new(t)
        assert _listing(tmp_path) == OLD | {f"{t.staging.name}/{k}": v for k, v in NEW.items()
                                            if k != "mine.txt"}  # fmt: skip
        assert t.commit() == ["figures", "result.gpkg"]
    # the old report.html is removed: it described the old run
    assert _listing(tmp_path) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "mine.txt", "result.gpkg"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left")])
def test_failure_before_commit_leaves_the_old_output_whole(tmp_path, exc):
    _old_output(tmp_path)
    with pytest.raises(type(exc)), OutputTransaction(tmp_path, OWNED) as t:
        _stage_new(t)
        raise exc
    assert _listing(tmp_path) == OLD


def test_disk_full_while_writing_the_journal_leaves_the_old_output(tmp_path, monkeypatch):
    _old_output(tmp_path)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(staging, "_write_journal", full)
    with pytest.raises(OSError), OutputTransaction(tmp_path, OWNED) as t:
        _stage_new(t)
        t.commit()
    recover(tmp_path)
    assert _listing(tmp_path) == OLD


@pytest.mark.parametrize("crash_at", range(5))  # 3 moves aside + 2 moves in
def test_commit_cut_short_is_finished_by_the_next_run(tmp_path, monkeypatch, crash_at):
    _old_output(tmp_path)
    real, calls = os.rename, []

    def dying_rename(a, b):
        if len(calls) == crash_at:
            raise SystemExit("killed")  # the process dies between two renames
        calls.append((a, b))
        real(a, b)

    with OutputTransaction(tmp_path, OWNED) as t:
        _stage_new(t)
        monkeypatch.setattr(os, "rename", dying_rename)
        with pytest.raises(SystemExit):
            t.commit()
        t.done = True  # a dead process cleans nothing up
    monkeypatch.setattr(os, "rename", real)
    assert (tmp_path / JOURNAL_NAME).exists()
    recover(tmp_path)
    assert _listing(tmp_path) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figures", "mine.txt", "result.gpkg"]


def test_planted_journal_cannot_move_other_files(tmp_path):
    _old_output(tmp_path)
    (tmp_path / JOURNAL_NAME).write_text(
        json.dumps(
            {
                "staging": "..",
                "old": ".ecovoucher-old-x",
                "entries": ["mine.txt"],
                "remove": ["../x"],
            }
        )
    )
    recover(tmp_path)
    assert _listing(tmp_path) == OLD


def test_interrupt_during_commit_is_held_until_the_moves_are_done(tmp_path, monkeypatch):
    _old_output(tmp_path)
    real = os.rename

    def rename_and_interrupt(a, b):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the signal arrives here
        real(a, b)

    with pytest.raises(KeyboardInterrupt), OutputTransaction(tmp_path, OWNED) as t:
        _stage_new(t)
        monkeypatch.setattr(os, "rename", rename_and_interrupt)
        t.commit()
    monkeypatch.setattr(os, "rename", real)
    assert _listing(tmp_path) == NEW


def test_commit_refused_when_the_lock_was_lost(tmp_path):
    _old_output(tmp_path)
    lock = FolderLock(tmp_path).acquire()
    try:
        with pytest.raises(InputError), OutputTransaction(tmp_path, OWNED, lock) as t:
            _stage_new(t)
            stolen = json.loads(lock.path.read_text()) | {"token": "another run"}
            lock.path.write_text(json.dumps(stolen))
            t.commit()
    finally:
        lock.release()
    assert {k: v for k, v in _listing(tmp_path).items() if not k.startswith(".")} == OLD


def test_leftovers_of_dead_runs_are_removed(tmp_path):
    _old_output(tmp_path)
    (tmp_path / ".ecovoucher-staging-dead").mkdir()
    (tmp_path / ".ecovoucher-staging-dead" / "result.gpkg").write_text("half")
    (tmp_path / ".partial-303-figures").mkdir()
    with OutputTransaction(tmp_path, OWNED):
        pass
    assert _listing(tmp_path) == OLD


# ----------------------------------------------------------------------------------------------
# the resume cache's file format


def _partition_result():
    rng = np.random.default_rng(5)
    n = 50
    areas = (
        np.arange(n, dtype=np.int64),
        np.full(n, 2010),
        rng.integers(11, 67, n).astype(np.int32),
        rng.random(n) * 1e6,
    )
    return {"areas": [areas], "transitions": [], "n": np.int64(7), "note": ("x", 1.5, None, True)}


def _same(a, b):
    assert type(a) is type(b)
    if isinstance(a, np.ndarray | np.generic):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b)
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()  # bit for bit
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


def test_cache_file_round_trip_is_bit_identical(tmp_path):
    value = _partition_result()
    cache_file.save(tmp_path / "p.npz", value, "run-1/part-1")
    _same(cache_file.load(tmp_path / "p.npz", "run-1/part-1"), value)
    assert (
        pickle.loads(pickle.dumps(value))["areas"][0][3].tobytes() == value["areas"][0][3].tobytes()
    )


def test_planted_pickle_is_not_executed(tmp_path, caplog):
    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'executed'}",))

    for name, data in {
        "pickle.npz": pickle.dumps(Boom()),
        "object.npz": None,  # an .npz holding an object array (a pickle inside)
    }.items():
        path = tmp_path / name
        if data is None:
            np.savez(path, meta=np.array([Boom()], dtype=object), a0=np.zeros(2))
        else:
            path.write_bytes(data)
        assert cache_file.load(path, "k") is None
    assert not (tmp_path / "executed").exists()
    assert caplog.text.count("ignored and recomputed") == 2


def test_corrupt_truncated_and_foreign_entries_are_ignored(tmp_path, caplog):
    value = _partition_result()
    path = tmp_path / "p.npz"
    cache_file.save(path, value, "k1")
    assert cache_file.load(path, "k2") is None  # foreign: another run's or partition's
    assert "foreign" in caplog.text
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # truncated
    assert cache_file.load(path, "k1") is None
    # one bit of an area changed, zip CRCs made consistent again: only the checksum sees it
    with np.load(io.BytesIO(whole), allow_pickle=False) as z:
        members = {k: z[k] for k in z.files}
    members["a3"] = members["a3"].copy()
    members["a3"][0] = np.nextafter(members["a3"][0], 2e6)
    np.savez(path, **members)
    assert cache_file.load(path, "k1") is None
    assert "checksum does not match" in caplog.text
    assert cache_file.load(tmp_path / "absent.npz", "k1") is None


def test_cache_file_refuses_to_save_objects(tmp_path):
    with pytest.raises(TypeError):
        cache_file.save(tmp_path / "p.npz", {"g": np.array([object()])}, "k")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------
# numba's cache when neither the install nor HOME can be written


def test_numba_cache_goes_to_the_temporary_folder_when_nothing_else_is_writable(monkeypatch):
    import pipeline

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a user without rights
    pipeline._numba_cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"].startswith(
        os.path.join(tempfile.gettempdir(), "ecovoucher-numba-")
    )
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(os, "access", lambda path, mode: True)  # a writable install: numba's own
    pipeline._numba_cache_dir()
    assert "NUMBA_CACHE_DIR" not in os.environ
