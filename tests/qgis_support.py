"""For tests that use a real QGIS: Debian's python3-qgis runs under /usr/bin/python3, always in a
subprocess (never imported into the test process). Those tests are skipped where it is absent;
`.ci/run` installs it."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

QGIS_PYTHON = "/usr/bin/python3"
#: environment of a headless QGIS process (no X server)
QGIS_ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


@functools.cache
def has_qgis() -> bool:
    if not Path(QGIS_PYTHON).exists():
        return False
    try:
        run = subprocess.run(
            [QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0


needs_qgis = pytest.mark.skipif(not has_qgis(), reason="QGIS (python3-qgis) not installed")


def qgis_check() -> Path | None:
    """shared/tools/qgis_check.py: beside the clone (CI: ../shared) or above the worktree."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "tools" / "qgis_check.py"
        if candidate.exists():
            return candidate
    return None
