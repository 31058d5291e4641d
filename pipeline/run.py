"""The eco-voucher pipeline, top to bottom: settings → ingest → zonal → accounting → output.

:func:`run_pipeline` calls the stages' public functions in order —
:func:`~pipeline.settings.load_settings`, :func:`~pipeline.ingest.ingest`,
:func:`~pipeline.zonal.measure`, :func:`~pipeline.accounting.account_counties` (then
:func:`~pipeline.accounting.add_market` and :func:`~pipeline.accounting.add_uncertainty` when the
config has those sections), :func:`~pipeline.output.write_geopackage` and
:func:`~pipeline.output.write_report` — each a step of the progress stream and a log line with its
duration, and returns where the output went. Every stage returns new values; none changes what an
earlier one returned. :func:`check_inputs` runs the same checks without computing areas
(``ecovoucher validate``): settings, ingest, and the zonal stage in check-only mode.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipeline import __version__
from pipeline.accounting import (
    Accounts,
    account_counties,
    add_market,
    add_uncertainty,
    change_layer,
)
from pipeline.ingest import Inputs, ingest
from pipeline.output import (
    CHANGE_TIF,
    OUTPUT_ENTRIES,
    OUTPUT_NAME,
    MapsInBackground,
    write_change_style,
    write_geopackage,
    write_report,
)
from pipeline.runtime import progress
from pipeline.runtime.checksums import checksum
from pipeline.runtime.engine import Engine, in_background
from pipeline.runtime.staging import check_out_dir, staged_output
from pipeline.settings import Coefficients, Config, Settings, load_settings
from pipeline.zonal import PARTITION_SIZE, ZONAL_FORMAT, Resume, measure, tile_plan

log = logging.getLogger("pipeline")


@dataclass(frozen=True)
class RunResult:
    gpkg: Path
    accounts: Accounts
    inputs: Inputs
    seconds: dict[str, float]


#: what each stage does, for the progress stream (``--progress json``)
STAGES = {
    "config": "reading the catalog and the config",
    "ingest": "reading and checking the inputs",
    "zonal": "land-use areas per county and the transfer matrix",
    "accounting": "standard forest and vouchers per county",
    "market": "clearing the voucher market",
    "uncertainty": "Monte Carlo of the vouchers",
    "export": "writing eco_vouchers.gpkg",
    "report": "figures, tables and report.html",
}


@contextmanager
def _stage(name: str, seconds: dict[str, float]) -> Iterator[None]:
    with progress.stage(name, STAGES[name]):
        t0 = time.perf_counter()
        yield
        seconds[name] = time.perf_counter() - t0
        log.info("%-10s done in %6.2f s", name, seconds[name])


def _plan(config: Config | None = None) -> None:
    """The run's stages, in order, for the progress stream's ``step``."""
    optional = [] if config is None else [
        name for name, on in (("market", config.market), ("uncertainty", config.uncertainty))
        if on is not None
    ]  # fmt: skip
    progress.plan(["config", "ingest", "zonal", "accounting", *optional, "export", "report"])


def check_inputs(
    catalog_path: Path,
    config_path: Path,
    engine: Engine | None = None,
    *,
    tiles: int | None = None,
    memory_limit: int | None = None,
) -> tuple[Settings, Inputs]:
    """Load the settings, read and check every input, and run the zonal stage's checks without
    computing areas: overlapping land-use polygons, or the raster grids and every pixel against
    the legend. ``tiles``, ``memory_limit``: as for :func:`run_pipeline`."""
    progress.plan(["config", "ingest", "overlaps"])
    with progress.stage("config", STAGES["config"]):
        settings = load_settings(catalog_path, config_path)
    plan = tile_plan(settings.catalog, settings.config, tiles, memory_limit)
    with _spill_folder(None, plan.n) as spill_dir:
        with progress.stage("ingest", STAGES["ingest"]):
            inputs = ingest(settings.catalog, settings.config, spill_dir)
        with progress.stage("overlaps", "looking for overlapping land-use polygons"):
            measure(
                inputs, settings.catalog, settings.config, engine or Engine(), None, plan,
                check_only=True,
            )  # fmt: skip
    return settings, inputs


def run_pipeline(
    catalog_path: Path,
    config_path: Path,
    out_dir: Path,
    engine: Engine | None = None,
    *,
    partition_size: int = PARTITION_SIZE,
    resume: bool = True,
    force: bool = False,
    tiles: int | None = None,
    memory_limit: int | None = None,
    wait: float = 0.0,
    landuse_change: bool = False,
    landuse_layers: bool = False,
) -> RunResult:
    """Run the whole eco-voucher pipeline and write ``out_dir/eco_vouchers.gpkg`` and the report.
    ``landuse_change``: write the change map whatever the config's ``outputs`` say;
    ``landuse_layers``: likewise each year's land use clipped to the counties.

    ``partition_size``: counties per parallel task. ``resume``: keep finished partitions under
    ``out_dir/.ecovoucher-cache`` and reuse them when the same inputs and settings run again;
    ``force``: delete that cache first and recompute everything. ``tiles``: hold the vector land
    use a tile of counties at a time (see :mod:`pipeline.zonal.tiles`; the results are the same);
    ``memory_limit``: bytes; as many tiles as the memory model says keep the run under it.

    The output folder is checked before any work and locked for the run (``wait``: seconds to
    wait for another run holding it); everything is written into a staging folder and moved into
    place at the end in one step (see :mod:`pipeline.runtime.staging`): until then an earlier
    run's output stays as it was, whatever happens.
    """
    engine = engine or Engine()
    seconds: dict[str, float] = {}
    started = datetime.now(timezone.utc)
    out_dir = check_out_dir(Path(out_dir), OUTPUT_ENTRIES)
    # the spill files and the resume cache live in out_dir; the outputs go to tx.staging
    with staged_output(out_dir, OUTPUT_ENTRIES, wait=wait) as tx:
        _plan()
        with _stage("config", seconds):  # 1 settings
            settings = load_settings(catalog_path, config_path)
        catalog, config, coefficients = settings.catalog, settings.config, settings.coefficients
        forced = {"landuse_change": landuse_change, "landuse": landuse_layers}
        if any(forced.values()):  # --landuse-change, --landuse-layers
            outputs = config.outputs.model_copy(update={k: True for k, v in forced.items() if v})
            config = config.model_copy(update={"outputs": outputs})
        _plan(config)
        plan = tile_plan(catalog, config, tiles, memory_limit)
        with _spill_folder(out_dir, plan.n) as spill_dir:
            with _stage("ingest", seconds):  # 2 ingest
                inputs = ingest(catalog, config, spill_dir)
                described = inputs.landuse.describe()
                log.info(
                    "ingest: %d counties; land use %s",
                    len(inputs.counties),
                    ", ".join(f"{y}: {text}" for y, text in described.items()),
                )
            # matplotlib for the maps is imported meanwhile: zonal leaves the GIL mostly free
            in_background(MapsInBackground.preload, name="matplotlib")
            cache = Resume(out_dir, force) if resume or force else None
            with _stage("zonal", seconds):  # 3 zonal
                zonal = measure(
                    inputs, catalog, config, engine, cache, plan, partition_size=partition_size,
                    change_tif=tx.staging / CHANGE_TIF,
                )  # fmt: skip
        with _stage("accounting", seconds):  # 4 accounting: vouchers, market, Monte Carlo
            accounts = account_counties(
                inputs.counties, zonal.class_areas, inputs.socio, config, coefficients
            )
        if config.market is not None:
            with _stage("market", seconds):
                accounts = add_market(accounts, config.market)
        # the maps need only the county table as it now stands: drawn while the Monte Carlo runs
        maps = MapsInBackground(accounts.county_vouchers, settings.years, tx.staging)
        try:
            if config.uncertainty is not None:
                with _stage("uncertainty", seconds):
                    accounts = add_uncertainty(
                        accounts, zonal.class_areas, config, coefficients, engine.local_threads
                    )
            with _stage("export", seconds):  # 5 output
                notes = inputs.all_notes()  # with the county overlap warning, checked meanwhile
                provenance = _provenance(
                    settings, notes, inputs.checksums, zonal.notes, engine, started
                )
                layers = {
                    "county_vouchers": accounts.county_vouchers,
                    "class_areas": zonal.class_areas,
                    "transitions": zonal.transitions,
                    "trades": accounts.trades,
                }
                if zonal.changes is not None:  # the change map, with each piece's ΔM
                    layers["landuse_change"] = change_layer(
                        zonal.changes, coefficients, settings.years
                    )
                for year in settings.years:  # outputs: {landuse: true}
                    if zonal.landuse and year in zonal.landuse:
                        layers[f"landuse_{year}"] = zonal.landuse[year]
                if zonal.changes is not None and (tx.staging / CHANGE_TIF).exists():
                    pairs = zip(zonal.changes["from_code"], zonal.changes["to_code"])
                    write_change_style(
                        tx.staging / CHANGE_TIF, pairs, catalog.legends(), settings.years
                    )
                gpkg = write_geopackage(
                    tx.staging, layers, accounts.totals, provenance, years=settings.years
                )
            with _stage("report", seconds):
                report_files = write_report(gpkg, tx.staging, maps, config=config)
        finally:
            maps.discard()
        tx.commit()
    gpkg = out_dir / OUTPUT_NAME
    log.info("wrote %s and %d report files (figures, tables, report.html)", gpkg, len(report_files))
    return RunResult(gpkg, accounts, inputs, seconds)


@contextmanager
def _spill_folder(out_dir: Path | None, n_tiles: int) -> Iterator[Path | None]:
    """A folder for the spilled land use of a tiled run (in the output folder, else the system's
    temporary folder), removed afterwards whatever happens; None when the run is not tiled."""
    if n_tiles <= 1:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix=".ecovoucher-spill-", dir=out_dir))
    log.info("tiled run (up to %d tiles): land use spilled to %s", n_tiles, folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _provenance(
    settings: Settings,
    notes: list[str],
    checksums: dict[str, str],
    zonal_notes: tuple[str, ...],
    engine: Engine,
    started: datetime,
) -> dict[str, str]:
    """The run's provenance for the GeoPackage's summary: software, command, times, engine, the
    settings files, every input with its sha256, and the notes of ingest and zonal."""
    catalog, config, coefficients = settings.catalog, settings.config, settings.coefficients
    from importlib.metadata import version

    import dask
    import geopandas
    import numpy
    import pyogrio
    import pyproj
    import rasterio
    import shapely

    prov = {
        "software": json.dumps(
            {
                "ecovoucher": __version__,
                "zonal_format": ZONAL_FORMAT,
                "python": platform.python_version(),
                "geopandas": geopandas.__version__,
                "shapely": shapely.__version__,
                "geos": shapely.geos_version_string,
                "pyproj": pyproj.__version__,
                "proj": pyproj.proj_version_str,
                "pyogrio": pyogrio.__version__,
                "gdal": pyogrio.__gdal_version_string__,
                "numpy": numpy.__version__,
                "dask": dask.__version__,
                "rasterio": rasterio.__version__,
                "numba": version("numba"),
            },
            ensure_ascii=False,
        ),
        "command": " ".join(sys.argv),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "engine": engine.describe(),
        "catalog": f"{catalog.path} sha256={checksum(catalog.path)}",
        "config": f"{config.path} sha256={checksum(config.path)}",
        "config_text": config.path.read_text(encoding="utf-8"),
        **_coefficient_provenance(coefficients),
        "equal_area_crs": config.equal_area_crs,
    }
    for i, (path, digest) in enumerate(sorted(checksums.items())):
        prov[f"input_{i + 1}"] = f"{path} sha256={digest}"
    if catalog.notes:
        prov["data_notes"] = catalog.notes
    for i, note in enumerate(notes):
        prov[f"ingest_note_{i + 1}"] = note
    for i, note in enumerate(zonal_notes):  # how raster cell areas were obtained
        prov[f"zonal_note_{i + 1}"] = note
    return prov


def _coefficient_provenance(coefficients: Mapping[int, Coefficients]) -> dict[str, str]:
    """The coefficient file(s) used, with checksums, and their k: one entry as before when every
    year uses one file, else one per legend."""
    files = {c.path: c for c in coefficients.values()}
    by_legend = {
        (c.legend.tag if c.legend else "resdc"): {str(code): k for code, k in c.k.items()}
        for c in files.values()
    }
    if set(by_legend) == {"resdc"}:
        (c,) = files.values()
        return {
            "coefficients": f"{c.path} sha256={checksum(c.path)}",
            "coefficients_k": json.dumps(c.k),
        }
    out = {"coefficients_by_legend": json.dumps(by_legend, ensure_ascii=False)}
    for c in files.values():
        out[f"coefficients_{c.legend.tag if c.legend else 'resdc'}"] = (
            f"{c.path} sha256={checksum(c.path)}"
        )
    return out
