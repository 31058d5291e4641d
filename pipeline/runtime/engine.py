"""Where the parallel stages run: serially, on local dask threads, or on a dask.distributed cluster.

Stages hand :meth:`Engine.map` a function and a list of argument tuples; the engine runs them and
returns the results in task order, whatever ran them, so results never depend on the engine.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from pipeline.errors import InputError
from pipeline.runtime import progress
from pipeline.runtime.scheduler import DEFAULT_TIMEOUT

log = logging.getLogger(__name__)


def in_background(fn: Callable[..., Any], *args: Any, name: str) -> Future:
    """Start ``fn(*args)`` in a thread of its own and return its future (work beside the stages:
    checksums, a check whose outcome is only a warning, the maps)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    job = pool.submit(fn, *args)
    pool.shutdown(wait=False)  # the thread ends when fn returns
    return job


@dataclass
class Engine:
    """``workers``: local threads (default: all cores; 1 = no dask); ``scheduler``: a
    dask.distributed scheduler address such as ``tcp://host:8786``, which takes precedence."""

    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True
    #: seconds to wait for the scheduler to answer, for a first worker, and for progress while
    #: no worker is connected (see :mod:`pipeline.runtime.scheduler`)
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        self._client: Any = None

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def local_threads(self) -> int:
        """Threads for numpy work in this process (on a cluster: this machine's cores)."""
        return (os.cpu_count() or 1) if self.scheduler else self.n_workers

    def describe(self) -> str:
        if self.scheduler:
            return f"dask.distributed scheduler {self.scheduler}"
        if self.n_workers == 1:
            return "1 thread (serial, no dask)"
        return f"local dask threads × {self.n_workers}"

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple], desc: str) -> list[Any]:
        """Run ``fn(*args)`` for every tuple in ``tasks``; results in task order. Each finished
        task moves the terminal's bar and the ``--progress json`` stream (:mod:`.progress`)."""
        bar = tqdm(total=len(tasks), desc=desc, unit="part", disable=not self.progress, leave=False)
        lock, done = threading.Lock(), [0]

        def tick() -> None:
            with lock:
                done[0] += 1
                bar.update()
                progress.advance(done[0], len(tasks), f"{desc}: {done[0]}/{len(tasks)} parts")

        progress.advance(0, len(tasks), f"{desc}: 0/{len(tasks)} parts")
        try:
            if self.scheduler:
                return self._map_distributed(fn, tasks, tick)
            if self.n_workers == 1:
                out = []
                for args in tasks:
                    out.append(fn(*args))
                    tick()
                return out
            return self._map_threads(fn, tasks, tick)
        finally:
            bar.close()

    def _map_threads(
        self, fn: Callable[..., Any], tasks: Sequence[tuple], tick: Callable[[], None]
    ) -> list[Any]:
        import dask
        from dask.callbacks import Callback

        class _Progress(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):
                tick()

        delayed = [dask.delayed(fn, pure=False)(*args) for args in tasks]
        with _Progress():
            return list(dask.compute(*delayed, scheduler="threads", num_workers=self.n_workers))

    def _map_distributed(
        self, fn: Callable[..., Any], tasks: Sequence[tuple], tick: Callable[[], None]
    ) -> list[Any]:
        from distributed import wait

        client = self.client()
        futures = [client.submit(fn, *args, pure=False) for args in tasks]
        pending = futures
        while pending:
            try:
                done = wait(pending, timeout=self.timeout, return_when="FIRST_COMPLETED")
            except TimeoutError:  # slow tasks are fine; tasks nobody can run are not
                if not client.scheduler_info().get("workers"):
                    raise self._no_workers("every worker left the scheduler") from None
                continue
            for _ in done.done:
                tick()
            pending = list(done.not_done)
        return client.gather(futures)

    def client(self) -> Any:
        """The dask.distributed client (connected on first use, with a first worker)."""
        if self._client is None:
            self._client = self._connect()
            try:
                self._client.wait_for_workers(1, timeout=self.timeout)
            except TimeoutError:
                raise self._no_workers("no worker connected to the scheduler") from None
            link = getattr(self._client, "dashboard_link", None)
            log.info("connected to %s; dashboard: %s", self.scheduler, link or "none")
        return self._client

    def _connect(self) -> Any:
        """A client of the scheduler, or InputError if it does not answer within the timeout.
        distributed's own timeout covers the TCP connection, not the handshake after it (a
        server that accepts and never answers hung the run), so the client is made in a thread
        that is given up on after the timeout."""
        from distributed import Client

        box: dict[str, Any] = {}

        def connect() -> None:
            try:
                box["client"] = Client(self.scheduler, timeout=f"{self.timeout}s")
            except Exception as exc:  # reported below, in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=connect, name="dask-connect", daemon=True)
        thread.start()
        thread.join(self.timeout + 2)
        error = box.get("error")
        if "client" in box:
            return box["client"]
        if error is not None and not isinstance(error, OSError | TimeoutError):
            raise error
        why = f" ({type(error).__name__}: {error})" if error is not None else ""
        raise InputError(
            f"cannot reach the dask scheduler at {self.scheduler}: it did not answer within "
            f"{self.timeout:g} s"
            f"{why}. Check the address (tcp://host:8786) and that the scheduler is running, or "
            "wait longer with --scheduler-timeout SECONDS.",
            where="--scheduler",
        )

    def _no_workers(self, what: str) -> InputError:
        self.close()
        return InputError(
            f"{what} at {self.scheduler} for {self.timeout:g} s, so nothing can run. Start "
            f"workers (dask worker {self.scheduler}), or wait longer with --scheduler-timeout "
            "SECONDS.",
            where="--scheduler",
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
