"""Files that appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

#: temporary files being written are named .partial-<pid>-<thread>-<final name>
PARTIAL_PREFIX = ".partial-"


@contextlib.contextmanager
def replacing(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (same folder, same suffix, so GDAL picks the same
    driver); when the block succeeds it is renamed onto ``final`` in one step, and whatever
    happens the temporary file is gone afterwards. A reader never sees a half-written file, and
    a failed write never destroys the previous one."""
    final = Path(final)
    tmp = final.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{threading.get_ident()}-{final.name}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
