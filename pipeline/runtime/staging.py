"""The output folder as one transaction, and the checks made on it before any work.

:func:`check_out_dir` refuses, before anything is computed, an output folder that cannot be
written, is a system folder (``/``, ``/usr``, ``C:\\Windows`` …), or holds something of the wrong
kind under a name the run writes (a folder called ``eco_vouchers.gpkg``).

:class:`OutputTransaction`: everything a run writes goes into a staging folder,
``OUT/.ecovoucher-staging-<token>/``, and is moved into place only when all of it is complete.
Until :meth:`~OutputTransaction.commit`, the output of an earlier run stays as it was, whatever
happens (interrupt, full disk, crash); an aborted transaction leaves nothing behind.

The staging folder is inside ``OUT`` rather than beside it: a rename is atomic only within one file
system, the folder above ``OUT`` may not be writable, and ``OUT`` may hold the user's own files,
so the run replaces the names it owns one by one rather than the whole folder.

Commit: the names to move are written first to a journal, ``OUT/.ecovoucher-commit.json``; the
old entries are renamed into ``OUT/.ecovoucher-old-<token>/``, the new ones from staging into
``OUT``, then the journal and the old entries are deleted. Renames take no disk space and no
time to speak of, and Ctrl-C / SIGTERM arriving meanwhile are held until the moves are done. If
the process dies between two renames (``kill -9``, power), the next run (or
:func:`recover`) finds the journal and finishes the moves, so the folder then holds the new run's
output whole. A reader never needs to look at anything but the final names.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import EcoVoucherError, InputError, Problem
from pipeline.runtime.lock import FolderLock

log = logging.getLogger(__name__)

STAGING_PREFIX = ".ecovoucher-staging-"
OLD_PREFIX = ".ecovoucher-old-"
JOURNAL_NAME = ".ecovoucher-commit.json"
#: temporary files of the writers before the staging folder, and spill folders of tiled runs
#: (removed when found: the run that finds them holds the lock, so their runs are over)
LEFTOVER_PREFIXES = (".partial-", ".ecovoucher-spill-")
#: output folders whose commit completed in this process, for the messages at exit
COMMITTED: list[Path] = []
#: below this much free space after a failed write, the disk is taken to be full
FULL_BELOW_BYTES = 1 << 20

#: folders whose contents belong to the operating system; OUT may not be one of them or below
_SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32",
                 "/proc", "/sbin", "/sys", "/usr", "/run")  # fmt: skip


def check_out_dir(
    out_dir: Path, owned: Mapping[str, bool] | None = None, *, create: bool = False
) -> Path:
    """Check, before any work, that ``out_dir`` can take this run's output (``create``: create
    it now; else :func:`staged_output` creates it when the output is written).

    ``owned``: the names the run writes directly in ``out_dir``, each ``True`` for a folder and
    ``False`` for a file; an existing entry of the other kind is refused (the run would replace
    it). Raises :class:`InputError` (exit 2) naming ``--out`` and the fix; returns the folder."""
    out_dir = Path(out_dir)
    where = f"output folder (--out) {out_dir}"
    system = _system_folder(out_dir)
    if system:
        raise InputError(
            f"is {system}; the run would write its files there. Give a folder of its own, e.g. "
            "out/my-run",
            where=where,
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("is a file, not a folder; choose another --out", where=where)
    if create:
        _make(out_dir)
    existing = next(p for p in [out_dir, *out_dir.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise InputError(f"cannot be created: {existing} is a file", where=where)
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "write in it" if existing == out_dir else f"create it in {existing}"
        raise InputError(f"no permission to {what}; choose another --out", where=where)
    problems = []
    for name, is_folder in (owned or {}).items():
        entry = out_dir / name
        if not os.path.lexists(entry):
            continue
        if entry.is_symlink() or entry.is_dir() != is_folder:
            kind = "a link" if entry.is_symlink() else "a folder" if entry.is_dir() else "a file"
            problems.append(
                Problem(
                    f"{where}, {name}",
                    f"is {kind}, where the run writes {'a folder' if is_folder else 'a file'} of "
                    "that name and would replace it; move or rename it, or choose another --out",
                )
            )
    if problems:
        raise InputError(problems)
    return out_dir


def _make(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot be created ({exc.strerror or exc})", where=f"output folder (--out) {out_dir}"
        ) from exc


def _system_folder(out_dir: Path) -> str:
    """Why ``out_dir`` is a system folder ('' if it is not)."""
    try:
        p = out_dir.expanduser().resolve()
    except (OSError, RuntimeError):
        return ""
    if sys.platform == "win32":
        windir = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")).resolve()
        if p == Path(p.anchor) or p == windir or windir in p.parents:
            return "a system folder"
        return ""
    text = p.as_posix()
    if text == "/":
        return "the root folder /"
    if len(p.parts) == 2:  # /tmp, /home, /var, /opt …: shared, not one run's own
        return f"the top-level folder {text}"
    for tree in _SYSTEM_TREES:
        if text == tree or text.startswith(tree + "/"):
            return f"inside the system folder {tree}"
    return ""


class OutputTransaction:
    """Stage a run's output and move it into ``out_dir`` in one step (see the module text).

    ``owned``: every name the run may write directly in ``out_dir``. At commit, each owned name
    present in ``out_dir`` is replaced by the staged one, or removed if the run did not stage it
    (an earlier run's figure of a year no longer asked for must not stay beside the new ones).
    ``lock``: a :class:`~pipeline.runtime.lock.FolderLock` held on ``out_dir``; checked at commit.
    Use as a context manager: leaving it without :meth:`commit` discards the staging folder.
    """

    def __init__(self, out_dir: Path, owned: Iterable[str], lock: Any = None) -> None:
        self.out_dir = Path(out_dir)
        self.owned = set(owned)
        self.lock = lock
        self.token = secrets.token_hex(6)
        self.staging = self.out_dir / f"{STAGING_PREFIX}{self.token}"
        self.committed: list[str] = []
        self.removed: list[str] = []
        self.done = False

    def __enter__(self) -> OutputTransaction:
        recover(self.out_dir)
        self.staging.mkdir()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.done:
            shutil.rmtree(self.staging, ignore_errors=True)

    def commit(self) -> list[str]:
        """Move the staged entries into place; return their names (sorted)."""
        if self.lock is not None:
            self.lock.check()
        staged = sorted(p.name for p in self.staging.iterdir())
        unknown = [n for n in staged if n not in self.owned]
        if unknown:  # a bug of ours, not the user's: the owned list must name every output
            raise RuntimeError(f"staged entries not declared as owned: {unknown}")
        remove = sorted(n for n in self.owned - set(staged) if os.path.lexists(self.out_dir / n))
        old = self.out_dir / f"{OLD_PREFIX}{self.token}"
        old.mkdir()
        journal = {"staging": self.staging.name, "old": old.name, "entries": staged,
                   "remove": remove}  # fmt: skip
        _write_journal(self.out_dir / JOURNAL_NAME, journal)
        with _signals_held():
            _finish(self.out_dir, journal)
        self.done = True
        self.committed, self.removed = staged, remove
        COMMITTED.append(self.out_dir)
        return staged


@contextlib.contextmanager
def staged_output(
    out_dir: Path, owned: Iterable[str], *, wait: float = 0.0
) -> Iterator[OutputTransaction]:
    """Hold the lock on ``out_dir`` (see :mod:`pipeline.runtime.lock`; ``wait``: seconds to wait
    for another run) and stage the output (:class:`OutputTransaction`); the caller writes into
    ``tx.staging`` and calls ``tx.commit()`` last. A full disk anywhere in the block is an
    :class:`InputError` (exit 2) that says the folder was left as it was."""
    out_dir = Path(out_dir)
    _make(out_dir)
    # the inner check runs before the staging folder is removed (the disk is still full then)
    with (
        _full_disk_is_input_error(out_dir),
        FolderLock(out_dir, wait=wait) as lock,
        OutputTransaction(out_dir, owned, lock) as tx,
        _full_disk_is_input_error(out_dir),
    ):
        yield tx


@contextlib.contextmanager
def _full_disk_is_input_error(out_dir: Path) -> Iterator[None]:
    try:
        yield
    except EcoVoucherError:
        raise
    except Exception as exc:
        if not _disk_full(exc, out_dir):
            raise
        raise InputError(
            f"the disk is full (no space left while writing: {_first_line(exc)}). Nothing in "
            f"{out_dir} was changed: any earlier output there is unchanged. Free some space, or "
            "choose an --out on another disk.",
            where=f"output folder (--out) {out_dir}",
        ) from exc


def _disk_full(exc: BaseException, out_dir: Path) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk: ENOSPC/EDQUOT, SQLite's or GDAL's
    words for it, or — GDAL's GeoPackage driver reports a full disk as "no such table" — less
    than :data:`FULL_BELOW_BYTES` left on the output folder's file system right after it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(seen).lower()
        if "no space left" in text or "disk is full" in text or "disk full" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return shutil.disk_usage(out_dir).free < FULL_BELOW_BYTES
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else type(exc).__name__) or type(exc).__name__


def _write_journal(path: Path, journal: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(journal, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _finish(out_dir: Path, journal: dict[str, Any]) -> None:
    """Carry out (or finish) the moves a journal lists, then delete it and what was replaced.
    Each step can be repeated: a commit cut short is finished by running this again."""
    staging, old = out_dir / journal["staging"], out_dir / journal["old"]
    old.mkdir(exist_ok=True)
    entries = [n for n in journal["entries"] if os.path.lexists(staging / n)]  # not yet moved
    for name in [*entries, *journal["remove"]]:
        target = out_dir / name
        if os.path.lexists(target) and not os.path.lexists(old / name):
            os.rename(target, old / name)
        elif os.path.lexists(target):  # moved aside already, then replaced? cannot be: clear it
            _remove(target)
    for name in entries:
        os.rename(staging / name, out_dir / name)
    (out_dir / JOURNAL_NAME).unlink()
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def recover(out_dir: Path) -> None:
    """Finish a commit that a dead process left half done, and remove what dead runs left
    (staging folders, replaced entries, temporary files). Call while holding the folder's lock."""
    out_dir = Path(out_dir)
    path = out_dir / JOURNAL_NAME
    if path.exists():
        journal = _read_journal(path)
        if journal is None:
            log.warning("%s: an unreadable commit journal was removed", path)
            path.unlink()
        else:
            log.warning("%s: finishing the commit of an interrupted run", out_dir)
            _finish(out_dir, journal)
    for entry in out_dir.iterdir() if out_dir.is_dir() else ():
        if entry.name.startswith((STAGING_PREFIX, OLD_PREFIX, *LEFTOVER_PREFIXES)) or (
            entry.name == JOURNAL_NAME + ".tmp"
        ):
            _remove(entry)


def _read_journal(path: Path) -> dict[str, Any] | None:
    """A journal, if it is one this module wrote (names without folders, our prefixes)."""
    try:
        j = json.loads(path.read_text(encoding="utf-8"))
        names = [*j["entries"], *j["remove"]]
        ok = (
            str(j["staging"]).startswith(STAGING_PREFIX)
            and str(j["old"]).startswith(OLD_PREFIX)
            and all(isinstance(n, str) and _plain_name(n) for n in [j["staging"], j["old"], *names])
        )
        return j if ok else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then act on them as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    signums = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in signums}
    for s in signums:
        signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(caught):
            handler = before[s]
            if callable(handler):
                handler(s, None)
            elif handler == signal.SIG_DFL and s == signal.SIGINT:
                raise KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), s)
