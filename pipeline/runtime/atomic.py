"""Files that appear whole or not at all."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

#: temporary files being written are named .partial-<pid>-<thread>-<final name>
PARTIAL_PREFIX = ".partial-"
_PARTIAL = re.compile(rf"^{re.escape(PARTIAL_PREFIX)}\d+-\d+-")


def partial_path(final: Path) -> Path:
    """Where :func:`replacing` writes ``final`` before renaming it (this process, this thread)."""
    final = Path(final)
    return final.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{threading.get_ident()}-{final.name}")


def final_name(path: Path) -> str:
    """The name a file written by :func:`replacing` will have once renamed (a file's own name when
    it is not such a temporary file): what a file that names it, such as a QGIS project stored
    inside it, must say."""
    return _PARTIAL.sub("", Path(path).name)


@contextlib.contextmanager
def replacing(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final`` (same folder, same suffix, so GDAL picks the same
    driver); when the block succeeds it is renamed onto ``final`` in one step, and whatever
    happens the temporary file is gone afterwards. A reader never sees a half-written file, and
    a failed write never destroys the previous one."""
    final = Path(final)
    tmp = partial_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
