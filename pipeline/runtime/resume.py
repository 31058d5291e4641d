"""Resumable runs: each finished partition of a parallel stage is saved under the output folder,
keyed by everything its result depends on, so a killed run started again redoes only the
unfinished partitions and gives identical results.

Layout: ``OUT/.ecovoucher-cache/<run key>/<stage>-<partition key>.npz``. The run key hashes the
input files' sha256, the config values the stage depends on and the software version; changing any
of them starts a fresh folder (the stale ones are removed). Files are written to a temporary name
and renamed, so a partition file is either complete or absent. ``--force`` deletes the cache first.

A partition file is data, never code (see :mod:`pipeline.runtime.cache_file`: arrays read with
``allow_pickle=False``, a checksum of content and key): whoever can write into a shared output
folder cannot make the next run execute anything, and a corrupt or foreign file is recomputed with
a warning. Pickles of earlier versions (``*.pkl``) are deleted unread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.runtime import cache_file

log = logging.getLogger(__name__)

CACHE_DIR_NAME = ".ecovoucher-cache"


@dataclass(frozen=True)
class PartitionCache:
    """Where one run's finished partitions are kept."""

    folder: Path

    @classmethod
    def for_run(
        cls, out_dir: Path, fingerprint: dict[str, Any], force: bool = False
    ) -> PartitionCache:
        """The cache folder for a run whose results depend on ``fingerprint`` (JSON-able)."""
        root = Path(out_dir) / CACHE_DIR_NAME
        key = _digest(json.dumps(fingerprint, sort_keys=True, default=str))[:20]
        if force and root.exists():
            shutil.rmtree(root, ignore_errors=True)
        if root.exists():  # results of other inputs or settings are of no further use
            for old in root.iterdir():
                if old.name != key:
                    shutil.rmtree(old, ignore_errors=True)
        folder = root / key
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.pkl"):  # earlier versions' pickles: never unpickled
            with contextlib.suppress(OSError):
                old.unlink()
        n = len(list(folder.glob("*.npz")))
        if n:
            log.info("resuming: %d finished partitions found in %s", n, folder)
        return cls(folder)

    def path(self, stage: str, parts: Sequence[Any]) -> Path:
        """The file for one partition of ``stage``, named by what it covers."""
        return self.folder / f"{stage}-{_digest(json.dumps([str(p) for p in parts]))[:24]}.npz"


def cached(path: Path | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or its saved result from ``path``; saves a newly computed result there.
    The entry's key is its run folder and name, so a file copied in from another run or
    partition is foreign and recomputed."""
    if path is None:
        return fn(*args)
    key = f"{path.parent.name}/{path.name}"
    saved = cache_file.load(path, key)
    if saved is not None:
        return saved
    result = fn(*args)
    try:
        cache_file.save(path, result, key)
    except OSError as exc:  # a read-only or full disk must not fail the run
        log.warning("could not save %s (%s); the run goes on without it", path, exc)
    return result


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
