"""Progress of a run for programs: ``--progress json``.

One JSON object per line on stderr, for a front end such as the QGIS plugin::

    {"stage": "zonal", "fraction": 0.42, "message": "zonal areas: 5/12 parts", "step": [3, 8]}

- ``stage``: the stage that runs (``config``, ``ingest``, ``zonal``, ``accounting``, ``market``,
  ``uncertainty``, ``export``, ``report``; ``validate``: ``config``, ``ingest``, ``overlaps``;
  ``demo`` while the demo data are built; ``vep``);
- ``fraction``: 0 when the stage starts, 1 when it ends; in between, the share done of what the
  stage runs now (the parallel tasks of one step, which the message names: a stage with several
  such steps goes from 0 to 1 for each);
- ``message``: for people; it starts with the stage's name;
- ``step``: ``[i, n]``, the stage's place among the run's stages, when known.

Between its start and its end a stage reports at most every :data:`MIN_INTERVAL` seconds. Every
other line on stderr is a log line or, at the end of a failed run, the error message. Off unless
:func:`to_json` was given a stream (by the command line); the terminal's progress bars are tqdm's (see
:class:`~pipeline.runtime.engine.Engine`). Standard library only; hand-written (a dozen lines
of JSON writing; no library offers this protocol).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = [
    "MIN_INTERVAL",
    "advance",
    "enabled",
    "plan",
    "stage",
    "stage_done",
    "stage_started",
    "to_json",
]

#: seconds between two reports of one stage (its start and end are always reported)
MIN_INTERVAL = 0.2


class _Stream:
    def __init__(self) -> None:
        self.out: TextIO | None = None
        self.stages: list[str] = []
        self.stage: str | None = None
        self.last = 0.0
        self.lock = threading.Lock()


_state = _Stream()


def to_json(stream: TextIO | None) -> None:
    """Report progress as JSON lines on ``stream`` from now on (None: stop reporting)."""
    _state.out = stream
    _state.stage, _state.stages, _state.last = None, [], 0.0


def enabled() -> bool:
    return _state.out is not None


def plan(stages: list[str]) -> None:
    """The stages the run will go through, in order (for ``step``)."""
    _state.stages = list(stages)


def stage_started(stage: str, message: str = "") -> None:
    _state.stage = stage
    _emit(stage, 0.0, f"{stage}: {message}" if message else stage, force=True)


def stage_done(stage: str, message: str = "") -> None:
    _emit(stage, 1.0, f"{stage}: {message}" if message else f"{stage}: done", force=True)


@contextmanager
def stage(name: str, message: str = "") -> Iterator[None]:
    """Report ``name`` started, and done when the block ends without an error."""
    stage_started(name, message)
    yield
    stage_done(name)


def advance(done: int, total: int, message: str) -> None:
    """``done`` of ``total`` parts of the current stage finished (thread-safe)."""
    if _state.out is None or _state.stage is None:
        return
    _emit(_state.stage, done / total if total else 1.0, f"{_state.stage}: {message}",
          force=done >= total)  # fmt: skip


def _emit(stage: str, fraction: float, message: str, force: bool = False) -> None:
    out = _state.out
    if out is None:
        return
    with _state.lock:
        now = time.monotonic()
        if not force and now - _state.last < MIN_INTERVAL:
            return
        _state.last = now
        event: dict = {"stage": stage, "fraction": round(min(max(fraction, 0.0), 1.0), 4),
                       "message": message}  # fmt: skip
        if stage in _state.stages:
            event["step"] = [_state.stages.index(stage) + 1, len(_state.stages)]
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        out.flush()
