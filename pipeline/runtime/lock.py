"""A lock on an output folder that holds across hosts sharing a file system (NFS included).

One run at a time may write into an output folder. The lock is the file ``OUT/.ecovoucher-lock``
(JSON: host, pid, start time, a random token, the lease in seconds). It is taken the NFS-safe way:
a claim file of our own is written, then hard-linked to the lock name; ``link`` is atomic on every
POSIX file system and NFS, and a lost reply is recognised by the claim's link count being 2
(the method of Mailman's ``flufl.lock`` and of ``lockfile``'s LinkLockFile).

Liveness is a **lease**, not ``kill(pid, 0)`` (a pid means nothing on another host or in another
PID namespace): a thread renews the lock file's modification time every ``lease / 4`` seconds. A
lock not renewed for ``lease`` seconds is stale, and the next run breaks it. One exception, so that
a run killed by ``kill -9`` or the OOM killer does not block the next one for a minute: when the
lock names the same machine boot, the same PID namespace (Linux: ``/proc/sys/kernel/random/boot_id``
and ``/proc/self/ns/pid``) and a pid that is gone or now belongs to a process started at another
time (``/proc/<pid>/stat``), its holder is certainly dead and the lock is broken at once. "Now" is the shared
file system's clock, read from the modification time of our freshly touched claim file, so two
hosts with different clocks agree on the lock's age.

A stale lock is broken by renaming it to a name of our own and then checking that what was renamed
is the stale lock judged (same token); if a fresh lock was renamed instead (another run broke and
took it meanwhile), it is linked back. The heartbeat checks the token each time: a run that was
paused longer than its lease and lost the lock learns it (:attr:`FolderLock.lost`) and must not
commit its output.

Hand-written (~150 lines) rather than ``flufl.lock``: that library has no heartbeat thread, keeps
no start time to name the holder, and judges expiry by each host's own clock; ``filelock`` and
``fasteners`` use ``flock``/``fcntl``, which do not hold across NFS clients reliably.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, Problem

log = logging.getLogger(__name__)

LOCK_NAME = ".ecovoucher-lock"
#: seconds without renewal after which a lock is stale (renewed every LEASE / 4)
LEASE = 60.0


class FolderLocked(InputError):
    """Another run holds the output folder (exit 2: wait for it, or choose another --out)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written in the lock file."""

    host: str
    pid: int
    started: str
    token: str
    lease: float
    node: str = ""  # boot id and PID namespace (Linux), "" elsewhere
    ticks: str = ""  # the holder process's start time in clock ticks since boot (Linux)

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}"


class FolderLock:
    """The lock on one output folder. Use as a context manager, or :meth:`acquire`/:meth:`release`.

    ``wait``: seconds to wait for another run to finish before refusing (0: refuse at once).
    ``lease``: seconds without renewal after which this lock counts as abandoned.
    """

    def __init__(self, folder: Path, *, wait: float = 0.0, lease: float = LEASE) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.wait = wait
        self.lease = lease
        self.holder = Holder(
            host=socket.gethostname(),
            pid=os.getpid(),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            token=secrets.token_hex(16),
            lease=lease,
            node=_node(),
            ticks=_start_ticks(os.getpid()),
        )
        self._claim = (
            self.folder / f"{LOCK_NAME}.{self.holder.host}.{os.getpid()}.{secrets.token_hex(4)}"
        )
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.lost = False

    # -- taking and giving back -------------------------------------------------------------

    def acquire(self) -> FolderLock:
        self._claim.write_text(json.dumps(self.holder.__dict__), encoding="utf-8")
        deadline = time.monotonic() + self.wait
        try:
            while not self._try_link():
                other = read_holder(self.path)
                if self._is_stale(other):
                    self._break(other)
                    continue
                if time.monotonic() >= deadline:
                    raise self._refusal(other)
                time.sleep(min(1.0, max(0.05, self.wait / 20)))
        except BaseException:
            with contextlib.suppress(OSError):
                self._claim.unlink()
            raise
        self._beat = threading.Thread(target=self._heartbeat, name="folder-lock", daemon=True)
        self._beat.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self.owned():
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(OSError):
            self._claim.unlink()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def owned(self) -> bool:
        """True while the lock file is ours (same token)."""
        other = read_holder(self.path)
        return other is not None and other.token == self.holder.token

    def check(self) -> None:
        """Raise if the lock was lost (this run was paused past its lease and another took over):
        call before committing output."""
        if self.lost or not self.owned():
            self.lost = True
            raise InputError(
                Problem(
                    f"output folder {self.folder}",
                    f"this run's lock was taken over by another run ({_describe(self.path)}) "
                    f"after this run went {self.lease:.0f} s without renewing it; nothing was "
                    "written. Run again when the other run has finished.",
                )
            )

    # -- internals ---------------------------------------------------------------------------

    def _try_link(self) -> bool:
        try:
            os.link(self._claim, self.path)
        except FileExistsError:
            return False
        except OSError:  # NFS: the link may have been made although the reply was lost
            pass
        return self._claim.stat().st_nlink == 2

    def _now(self) -> float:
        """The shared file system's clock: the modification time of our claim, just touched."""
        os.utime(self._claim)
        return self._claim.stat().st_mtime

    def _is_stale(self, other: Holder | None) -> bool:
        """Not renewed for its lease (a lock file that cannot be read: for ours), or held by a
        process of this machine and PID namespace that is gone."""
        here = other is not None and other.node and other.node == self.holder.node
        if here and _start_ticks(other.pid) != other.ticks:
            return True
        try:
            age = self._now() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False  # released meanwhile: the next link attempt decides
        return age > (other.lease if other else self.lease)

    def _break(self, stale: Holder | None) -> None:
        aside = self.folder / f"{LOCK_NAME}.broken.{self.holder.token}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = read_holder(aside)
        if (moved and moved.token) != (stale and stale.token):  # a fresh lock: give it back
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
        else:
            log.warning(
                "output folder %s: broke an abandoned lock (%s; not renewed for its lease)",
                self.folder,
                stale.describe() if stale else "holder unreadable",
            )
        with contextlib.suppress(OSError):
            aside.unlink()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease / 4):
            if not self.owned():
                self.lost = True
                log.error("output folder %s: this run's lock was taken over", self.folder)
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def _refusal(self, other: Holder | None) -> FolderLocked:
        waited = f" (waited {self.wait:.0f} s)" if self.wait else ""
        return FolderLocked(
            Problem(
                f"output folder {self.folder}",
                f"another ecovoucher run is writing here{waited}: {_describe(self.path, other)}. "
                "Wait for it to finish, or choose another --out. If that run is dead, its lock "
                f"expires {(other.lease if other else self.lease):.0f} s after its last renewal.",
            )
        )


def read_holder(path: Path) -> Holder | None:
    """The holder written in a lock file, or None if there is none (or it cannot be read)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Holder(
            host=str(data["host"]),
            pid=int(data["pid"]),
            started=str(data["started"]),
            token=str(data["token"]),
            lease=float(data["lease"]),
            node=str(data.get("node", "")),
            ticks=str(data.get("ticks", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _node() -> str:
    """This machine's boot and PID namespace (Linux), or '' where they cannot be read."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        return f"{boot}:{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), or '' if there is no such process
    here (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name in () may hold spaces


def _describe(path: Path, holder: Holder | None = None) -> str:
    holder = holder or read_holder(path)
    if holder is None:
        return "holder unknown"
    try:
        renewed = time.time() - path.stat().st_mtime
        return f"{holder.describe()}, lease renewed {max(renewed, 0):.0f} s ago"
    except OSError:
        return holder.describe()
