"""``ecovoucher demo``: build the demo data set (real counties, synthetic land use and statistics)
and run the pipeline on it with the repository's demo catalog and config."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

import pipeline
from pipeline.demo.build import build_demo_data
from pipeline.errors import InputError
from pipeline.run import RunResult, run_pipeline
from pipeline.runtime.engine import Engine

log = logging.getLogger(__name__)

JJJ = ("北京市", "天津市", "河北省")


def _repo() -> Path:
    repo = Path(pipeline.__file__).resolve().parents[1]
    if (
        not (repo / "configs" / "jingjinji.yaml").is_file()
        or not (repo / "data_catalog.yaml").is_file()
    ):
        raise InputError(
            f"the demo needs the source checkout's configs/ and data_catalog.yaml (looked in {repo}); "
            "run it from a clone installed with `pip install -e .`",
            where="ecovoucher demo",
        )
    return repo


def default_cache() -> Path:
    """Where ``ecovoucher demo`` builds its data by default: ``.cache/demo`` in the checkout."""
    return Path(pipeline.__file__).resolve().parents[1] / ".cache" / "demo"


def ensure_demo_data(
    cache: Path | None = None, *, fallback: Path | None = None, progress: bool = False
) -> Path:
    """Build the Beijing–Tianjin–Hebei demo data as ``ecovoucher demo`` does (skipped when they
    are there and up to date) into ``cache``: by default :func:`default_cache` in a source
    checkout, else ``fallback``. Returns the folder."""
    if cache is None:
        try:
            _repo()
            cache = default_cache()
        except InputError:
            if fallback is None:
                raise
            cache = fallback
    log.info("demo data: %s", Path(cache).resolve())
    build_demo_data(
        Path(cache), provinces=JJJ, seed=2022, progress=progress, polygons_per_year=220_000
    )
    return Path(cache)


def run_demo(
    out: Path,
    cache: Path | None = None,
    provinces: Sequence[str] | None = None,
    polygons: int | None = None,
    seed: int = 2022,
    engine: Engine | None = None,
    landuse_format: str = "vector",
    **run_options: Any,
) -> RunResult:
    """Build (or reuse) the demo data in ``cache`` and run the pipeline into ``out``."""
    repo = _repo()
    engine = engine or Engine()
    default = default_cache()
    cache = Path(cache) if cache else default
    provinces = tuple(provinces) if provinces else JJJ
    if polygons is None:
        polygons = 220_000 if provinces == JJJ else None
    kwargs = {"polygons_per_year": polygons} if polygons else {}
    log.info("demo: building data for %s in %s", "、".join(provinces), cache)
    build_demo_data(cache, provinces=provinces, seed=seed, progress=engine.progress, **kwargs)

    catalog, config = repo / "data_catalog.yaml", repo / "configs" / "jingjinji.yaml"
    rasters = None
    if landuse_format == "raster":
        from pipeline.demo.rasterize import burn_landuse_rasters

        log.info("demo: burning the land use to 30 m GeoTIFFs")
        rasters = burn_landuse_rasters(cache)
    if cache.resolve() != default.resolve() or provinces != JJJ or rasters:
        catalog, config = settings_for(cache, catalog, config, rasters)
    result = run_pipeline(catalog, config, Path(out), engine, **run_options)
    log.info("demo: outputs are in %s", Path(out).resolve())
    return result


def settings_for(
    cache: Path, catalog: Path, config: Path, rasters: dict[int, Path] | None = None
) -> tuple[Path, Path]:
    """Copies of the demo catalog and config that point at ``cache`` (and at ``rasters`` for the
    land use when given) and keep every county."""
    cat = yaml.safe_load(catalog.read_text("utf-8"))
    datasets = cat["datasets"]
    for entry in [datasets["counties"], datasets["socioeconomic"], *datasets["landuse"].values()]:
        entry["path"] = str(cache.resolve() / Path(entry["path"]).name)
    for year, path in (rasters or {}).items():
        datasets["landuse"][year] = {"path": str(Path(path).resolve()), "format": "raster"}
    cfg = yaml.safe_load(config.read_text("utf-8"))
    cfg.pop("study_area", None)  # the cache holds exactly the provinces that were built
    cfg["coefficients"] = str((config.parent / cfg["coefficients"]).resolve())
    new_catalog, new_config = cache / "catalog.yaml", cache / "config.yaml"
    new_catalog.write_text(yaml.safe_dump(cat, allow_unicode=True, sort_keys=False), "utf-8")
    new_config.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), "utf-8")
    return new_catalog, new_config
