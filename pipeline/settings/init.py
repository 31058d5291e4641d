"""``ecovoucher init DIR``: a commented catalog and config to start from.

One public function, :func:`init_project`. It writes ``DIR/catalog.yaml`` and ``DIR/config.yaml``
from the templates in ``pipeline/data/init/`` (every key explained in Chinese and English, with
units; the config carries the national reference values of the years the tool knows, with their
sources). The catalog points at the demo data, built first when missing, so that
``ecovoucher validate`` and ``ecovoucher run`` work on a fresh ``init`` as they are; a planner then
changes the paths and field names to their own data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.errors import InputError

__all__ = ["TEMPLATES", "init_project"]

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parents[1] / "data" / "init"
#: the placeholder in the catalog template for the demo data folder
DEMO_PLACEHOLDER = "@DEMO@"


def init_project(folder: Path, demo_data: Path, *, force: bool = False) -> list[Path]:
    """Write ``catalog.yaml`` and ``config.yaml`` into ``folder`` (created if missing), the
    catalog pointing at the demo data in ``demo_data``; return the two paths. Existing files
    are kept unless ``force``."""
    folder = Path(folder)
    targets = [folder / "catalog.yaml", folder / "config.yaml"]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise InputError(
            f"{', '.join(str(p) for p in existing)} already exist(s); choose another folder or "
            "add --force to overwrite",
            where="ecovoucher init",
        )
    folder.mkdir(parents=True, exist_ok=True)
    # posix separators: YAML double-quoted strings treat a backslash as an escape
    demo = Path(demo_data).resolve().as_posix().replace('"', '\\"')
    catalog = (TEMPLATES / "catalog.yaml").read_text("utf-8").replace(DEMO_PLACEHOLDER, demo)
    config = (TEMPLATES / "config.yaml").read_text("utf-8")
    for path, text in zip(targets, (catalog, config)):
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return targets
