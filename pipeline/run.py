"""The eco-voucher pipeline: catalog/config → ingest → zonal → accounting → export.

:func:`run_pipeline` calls one public function per stage, logs one line per stage with its
duration, and returns where the output went. :func:`check_inputs` runs the same checks without
computing areas (``ecovoucher validate``).
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

import geopandas as gpd
import pandas as pd

from pipeline import __version__
from pipeline.accounting.market import clear_market
from pipeline.accounting.uncertainty import monte_carlo
from pipeline.accounting.vouchers import Accounts, account
from pipeline.errors import InputError, Problem
from pipeline.ingest.inputs import Inputs, ingest
from pipeline.output import (
    OUTPUT_ENTRIES,
    OUTPUT_NAME,
    MapsInBackground,
    write_geopackage,
    write_report,
)
from pipeline.runtime import progress
from pipeline.runtime.checksums import checksum
from pipeline.runtime.engine import Engine, in_background
from pipeline.runtime.resume import PartitionCache
from pipeline.runtime.staging import check_out_dir, staged_output
from pipeline.settings.catalog import Catalog, load_catalog
from pipeline.settings.coefficients import Coefficients, coefficients_by_year
from pipeline.settings.config import Config, load_config
from pipeline.zonal.labels import in_legend_codes
from pipeline.zonal.overlaps import check_overlaps
from pipeline.zonal.tiles import TilePlan, tile_plan, tiled_zonal_areas
from pipeline.zonal.vector import PARTITION_SIZE, ZONAL_FORMAT, ZonalResult, zonal_areas

log = logging.getLogger("pipeline")

#: land-use coverage of a county below this share is warned about
COVERAGE_WARNING = 0.99


@dataclass
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


def _load_settings(catalog_path: Path, config_path: Path):
    """The catalog and the config; the problems of both reported together."""
    problems: list[Problem] = []
    catalog = config = files = None
    try:
        catalog = load_catalog(catalog_path)
    except InputError as exc:
        problems += exc.problems
    try:
        config, files = load_config(config_path)
    except InputError as exc:
        problems += exc.problems
    if problems:
        raise InputError(problems)
    return catalog, config, files


def check_inputs(
    catalog_path: Path,
    config_path: Path,
    engine: Engine | None = None,
    *,
    tiles: int | None = None,
    memory_limit: int | None = None,
) -> tuple[Catalog, Config, Inputs]:
    """Load the catalog and config, read and check every input, and look for overlapping land-use
    polygons (no zonal statistics). ``tiles``, ``memory_limit``: as for :func:`run_pipeline`."""
    progress.plan(["config", "ingest", "overlaps"])
    with progress.stage("config", STAGES["config"]):
        catalog, config, files = _load_settings(catalog_path, config_path)
        coefficients_by_year(catalog.legends(), files)
    plan = tile_plan(catalog, config, tiles, memory_limit)
    with _spill_folder(None, plan.n) as spill_dir:
        with progress.stage("ingest", STAGES["ingest"]):
            inputs = ingest(catalog, config, spill_dir)
        progress.stage_started("overlaps", "looking for overlapping land-use polygons")
        if inputs.spills:
            tiled_zonal_areas(
                inputs.counties,
                inputs.spills,
                engine or Engine(),
                plan,
                "error",
                _labels(catalog),
                check_only=True,
            )
        else:
            check_overlaps(
                inputs.counties,
                inputs.landuse,
                engine or Engine(),
                "error",
                _labels(catalog),
                rings=inputs.rings,
            )
    if inputs.rasters:  # CRS, georeferencing, block table, and every pixel against the legend
        from pipeline.ingest.grids import open_grid
        from pipeline.zonal.raster import check_raster_values

        legends = catalog.legends()
        for year, path in inputs.rasters.items():
            open_grid(year, path, inputs.raster_crs.get(year))
            check_raster_values(year, path, inputs.raster_crs.get(year), legends[year])
    inputs.settle()
    progress.stage_done("overlaps")
    return catalog, config, inputs


def _labels(catalog: Catalog) -> dict[int, str]:
    return {y: f"landuse {y} ({e.path})" for y, e in catalog.datasets.landuse.items()}


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
) -> RunResult:
    """Run the whole eco-voucher pipeline and write ``out_dir/eco_vouchers.gpkg`` and the report.

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
    with staged_output(out_dir, OUTPUT_ENTRIES, wait=wait) as tx:
        accounts, inputs, n_files = _stages(
            catalog_path, config_path, out_dir, tx.staging, engine, seconds, started,
            partition_size, resume, force, tiles, memory_limit,
        )  # fmt: skip
        tx.commit()
    gpkg = out_dir / OUTPUT_NAME
    log.info("wrote %s and %d report files (figures, tables, report.html)", gpkg, n_files)
    return RunResult(gpkg, accounts, inputs, seconds)


def _stages(
    catalog_path: Path,
    config_path: Path,
    out_dir: Path,
    staging: Path,
    engine: Engine,
    seconds: dict[str, float],
    started: datetime,
    partition_size: int,
    resume: bool,
    force: bool,
    tiles: int | None,
    memory_limit: int | None,
) -> tuple[Accounts, Inputs, int]:
    """Every stage, the outputs written into ``staging``; the accounts, the inputs and the
    number of report files."""
    _plan()
    with _stage("config", seconds):
        catalog, config, files = _load_settings(catalog_path, config_path)
        coefficients = coefficients_by_year(catalog.legends(), files)
    _plan(config)
    plan = tile_plan(catalog, config, tiles, memory_limit)
    with _spill_folder(Path(out_dir), plan.n) as spill_dir:
        inputs, zonal = _ingest_and_zonal(
            catalog, config, engine, Path(out_dir), spill_dir, plan, partition_size, resume,
            force, seconds,
        )  # fmt: skip
    class_areas = zonal.class_areas
    years = (config.years.base, config.years.target)
    _check_coverage_at_all(class_areas, inputs, catalog, config)
    with _stage("accounting", seconds):
        accounts = account(inputs.counties, class_areas, inputs.socio, config, coefficients)
        _warn_coverage(accounts, config)
    layers = {"class_areas": class_areas, "transitions": zonal.transitions}
    if config.market is not None:
        with _stage("market", seconds):
            cleared = clear_market(accounts.county_vouchers, config.market)
            _join(
                accounts, cleared.county_columns[["bought_ha", "sold_ha", "unmet_ha", "unsold_ha"]]
            )
            accounts.totals.update(cleared.totals)
            layers["trades"] = cleared.trades
    # the maps need only the county table as it now stands: draw them while the rest runs
    maps = MapsInBackground(accounts.county_vouchers, years, staging)
    try:
        if config.uncertainty is not None:
            with _stage("uncertainty", seconds):
                nat = config.national[config.years.target]
                mc = monte_carlo(
                    class_areas,
                    accounts.county_vouchers,
                    _one_legend_k(coefficients, years),
                    (nat.gdp_per_capita_yuan, nat.population_density_per_km2),
                    config.price_yuan_per_ha,
                    config.uncertainty,
                    years=years,
                    baseline_areas=accounts.baseline_areas,
                    threads=engine.local_threads,
                )
                _join(accounts, mc.county_columns)
                accounts.totals.update(mc.totals)
        with _stage("export", seconds):
            inputs.settle()  # the county overlap warning is in the notes by now
            provenance = _provenance(
                catalog, config, coefficients, inputs, engine, started, zonal.notes
            )
            gpkg = write_geopackage(
                staging,
                {
                    "county_vouchers": accounts.county_vouchers,
                    **{name: df for name, df in layers.items() if df is not None},
                },
                accounts.totals,
                provenance,
                years=years,
            )
        with _stage("report", seconds):
            report_files = write_report(gpkg, staging, maps)
    finally:
        maps.discard()
    return accounts, inputs, len(report_files)


def _ingest_and_zonal(
    catalog: Catalog,
    config: Config,
    engine: Engine,
    out_dir: Path,
    spill_dir: Path | None,
    plan: TilePlan,
    partition_size: int,
    resume: bool,
    force: bool,
    seconds: dict[str, float],
) -> tuple[Inputs, ZonalResult]:
    """The ingest and zonal stages."""
    with _stage("ingest", seconds):
        inputs = ingest(catalog, config, spill_dir)
        log.info(
            "ingest: %d counties; land use %s",
            len(inputs.counties),
            ", ".join(
                [
                    f"{y}: {len(g) if y in inputs.landuse else g.n:,} polygons"
                    for y, g in {**inputs.landuse, **inputs.spills}.items()
                ]
                + [f"{y}: raster {p.name}" for y, p in sorted(inputs.rasters.items())]
            ),
        )
    years = (config.years.base, config.years.target)
    cache = None
    if resume or force:
        fingerprint = {
            "inputs": inputs.checksums,
            # how the files are read (code field, layer, crs, encoding) changes the areas too
            "counties": catalog.datasets.counties.model_dump(mode="json"),
            "landuse": {str(y): catalog.datasets.landuse[y].model_dump(mode="json") for y in years},
            "equal_area_crs": config.equal_area_crs,
            "study_area": config.study_area.model_dump(),
            "years": years,
            "landuse_overlaps": config.landuse_overlaps,
            "partition_size": partition_size,
            "ecovoucher": __version__,
            "zonal_format": ZONAL_FORMAT,
        }
        cache = PartitionCache.for_run(Path(out_dir), fingerprint, force=force)
    # matplotlib for the maps is imported meanwhile: the zonal stage leaves the GIL mostly free
    in_background(MapsInBackground.preload, name="matplotlib")
    with _stage("zonal", seconds):
        log.info("zonal: running on %s", engine.describe())
        if inputs.rasters:
            from pipeline.zonal.raster import raster_zonal_areas  # numba: imported only if needed

            zonal = raster_zonal_areas(
                inputs.counties,
                inputs.rasters,
                engine,
                transitions=years,
                border=config.raster_border,
                cache_dir=cache.folder / "rasters" if cache else None,
                raster_crs=inputs.raster_crs,
                legends=catalog.legends(),
            )
        else:
            zonal = _vector_zonal(inputs, config, engine, catalog, partition_size, cache, plan)
        zonal = in_legend_codes(zonal, catalog.legends(), years)
    return inputs, zonal


def _vector_zonal(
    inputs: Inputs,
    config: Config,
    engine: Engine,
    catalog: Catalog,
    partition_size: int,
    cache: PartitionCache | None,
    plan: TilePlan | None = None,
) -> ZonalResult:
    """The overlap check (see :mod:`pipeline.zonal.overlaps`), then the zonal areas; tile by tile if
    ingest spilled the land use (see :mod:`pipeline.zonal.tiles`)."""
    transitions = (config.years.base, config.years.target)
    if inputs.spills:
        return tiled_zonal_areas(
            inputs.counties,
            inputs.spills,
            engine,
            plan or TilePlan(),
            config.landuse_overlaps,
            _labels(catalog),
            transitions,
            partition_size,
            cache,
        )
    inputs.landuse, identical, trees = check_overlaps(
        inputs.counties,
        inputs.landuse,
        engine,
        config.landuse_overlaps,
        _labels(catalog),
        rings=inputs.rings,
    )
    return zonal_areas(
        inputs.counties,
        inputs.landuse,
        engine,
        transitions=transitions,
        partition_size=partition_size,
        cache=cache,
        identical=identical,
        trees=trees,
    )


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


def _check_coverage_at_all(
    class_areas: pd.DataFrame, inputs: Inputs, catalog: Catalog, config: Config
) -> None:
    """A land-use year that covers none of the study area is a wrong file or a wrong CRS, not a
    county that lost all its land: stop, naming the file."""
    problems = []
    for year in (config.years.base, config.years.target):
        if not (class_areas["year"] == year).any():
            entry = catalog.datasets.landuse[year]
            bounds = inputs.counties.total_bounds.round(0)
            problems.append(
                Problem(
                    f"landuse {year} ({entry.path})",
                    f"covers none of the {len(inputs.counties)} counties of the study area "
                    f"(counties' extent in the equal-area CRS: {bounds.tolist()}). Is it the "
                    "right region, and is its CRS right (its .prj, or 'crs:' in the catalog)?",
                )
            )
    if problems:
        raise InputError(problems)


def _join(accounts: Accounts, columns: pd.DataFrame) -> None:
    """Add per-county columns (indexed by county_id) to county_vouchers, geometry kept last."""
    cv = accounts.county_vouchers
    geometry = cv.geometry.name
    joined = cv.drop(columns=geometry).join(columns, on="county_id")
    accounts.county_vouchers = gpd.GeoDataFrame(joined, geometry=cv.geometry.values, crs=cv.crs)


def _warn_coverage(accounts: Accounts, config: Config) -> None:
    t = accounts.county_vouchers
    for col, year in (
        ("coverage_base", config.years.base),
        ("coverage_target", config.years.target),
    ):
        low = t.loc[t[col] < COVERAGE_WARNING]
        if len(low):
            listing = ", ".join(
                f"{r.county_id} {r.name} {100 * getattr(r, col):.1f}%"
                for r in low.head(20).itertuples()
            )
            more = f" … ({len(low)} in all)" if len(low) > 20 else ""
            log.warning(
                "land use %d covers less than %.0f%% of %d counties: %s%s. Their missing area counts"
                " as non-ecological; check the land-use extent.",
                year,
                100 * COVERAGE_WARNING,
                len(low),
                listing,
                more,
            )


def _provenance(
    catalog: Catalog,
    config: Config,
    coefficients: Mapping[int, Coefficients],
    inputs: Inputs,
    engine: Engine,
    started: datetime,
    zonal_notes: tuple[str, ...] = (),
) -> dict[str, str]:
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
    for i, (path, digest) in enumerate(sorted(inputs.checksums.items())):
        prov[f"input_{i + 1}"] = f"{path} sha256={digest}"
    if catalog.notes:
        prov["data_notes"] = catalog.notes
    for i, note in enumerate(inputs.notes):
        prov[f"ingest_note_{i + 1}"] = note
    for i, note in enumerate(zonal_notes):  # how raster cell areas were obtained
        prov[f"zonal_note_{i + 1}"] = note
    return prov


def _one_legend_k(coefficients: Mapping[int, Coefficients], years: tuple[int, int]) -> dict:
    """The k per code for the Monte Carlo, which draws one k per code: both years must then
    share one legend."""
    base, target = (coefficients[y] for y in years)
    if base.legend != target.legend:
        raise InputError(
            f"the base year {years[0]} uses {base.legend.label()} and the target year "
            f"{years[1]} {target.legend.label()}; the uncertainty analysis draws one k per code "
            "of one legend. Remove the 'uncertainty:' section, or use one legend for both years.",
            where="config, key 'uncertainty'",
        )
    return target.k


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
