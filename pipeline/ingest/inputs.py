"""Stage 2 — ingest: read counties, land use and statistics; check them; bring them to one CRS.

One public function, :func:`ingest` (the counties in :mod:`~pipeline.ingest.counties`, the land
use in :mod:`~pipeline.ingest.landuse`, the statistics in :mod:`~pipeline.ingest.statistics`,
every vector file through :mod:`~pipeline.ingest.vector` and :mod:`~pipeline.ingest.clean`). Every vector is read with pyogrio (Arrow path), its CRS taken
from the file or the catalog, its attribute encoding honoured (a shapefile with no .cpg that is not
UTF-8 is tried as GBK, with a warning), its class codes checked against the RESDC table (3-digit
cropland sub-codes rolled up), invalid geometries repaired and counted, empty ones dropped and
counted, and everything reprojected to the configured equal-area CRS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import pandas as pd

from pipeline.errors import InputError, Problem
from pipeline.ingest.counties import county_overlap_notes, read_counties
from pipeline.ingest.landuse import InMemory, LandUse, Rasters, Spilled, StudyBoxes, read_landuse
from pipeline.ingest.mosaic import one_grid_per_year
from pipeline.ingest.polygonize import polygonize_year
from pipeline.ingest.spill import Spill
from pipeline.ingest.statistics import read_socio
from pipeline.runtime.checksums import checksum
from pipeline.runtime.engine import in_background
from pipeline.settings.catalog import Catalog, LanduseSource
from pipeline.settings.config import Config

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class PendingNotes:
    """Notes of checks that were still running when :func:`ingest` returned: the county overlap
    warning (~1.3 s of CPU nationally) runs beside the overlap check and the zonal stage, which
    leave CPU to spare. :meth:`wait` returns them; nothing is added to :class:`Inputs` later."""

    jobs: tuple[Future, ...] = ()

    def wait(self) -> list[str]:
        """Wait for the checks; their notes (their warnings are logged as they finish)."""
        return [note for job in self.jobs for note in job.result()]


@dataclass(frozen=True)
class Inputs:
    """Everything the later stages need, in the equal-area CRS."""

    counties: gpd.GeoDataFrame  # county_id, name, province, city, area_m2, geometry
    landuse: LandUse  # in memory, spilled to disk (a tiled run) or rasters
    socio: pd.DataFrame  # county_id → gdp_yuan, population (target year), indexed by county_id
    notes: tuple[str, ...] = ()  # what ingest repaired, dropped or assumed, sorted
    checksums: dict[str, str] = field(default_factory=dict)  # file → sha256
    pending: PendingNotes = PendingNotes()  # checks still running; see :meth:`all_notes`

    def all_notes(self) -> list[str]:
        """:attr:`notes` and those of the checks still running (waits for them), sorted."""
        return sorted([*self.notes, *self.pending.wait()])


def ingest(catalog: Catalog, config: Config, spill_dir: Path | None = None) -> Inputs:
    """Read, check and reproject every input the run needs. ``spill_dir``: stream the vector
    land use to files there (:class:`~pipeline.ingest.landuse.Spilled`) instead of holding it
    (:class:`~pipeline.ingest.landuse.InMemory`)."""
    problems: list[Problem] = []
    years = (config.years.base, config.years.target)
    for year in years:
        if year not in catalog.datasets.landuse:
            have = ", ".join(str(y) for y in sorted(catalog.datasets.landuse)) or "none"
            problems.append(
                Problem(
                    f"catalog {catalog.path}, datasets.landuse",
                    f"has no entry for {year} (years in the catalog: {have}); add one or change "
                    "years in the config",
                )
            )
    if problems:
        raise InputError(problems)

    notes: list[str] = []
    crs = config.crs
    # Read every dataset even when an earlier one is bad, so the user sees all problems at once.
    entries = {y: catalog.datasets.landuse[y] for y in years}
    rasters = {y: e.path for y, e in entries.items() if e.format == "raster"}
    for y in rasters:
        for path in entries[y].all_files:
            if not path.is_file():
                problems.append(Problem(f"landuse {y} ({path})", "file not found; fix 'path'"))
    # counties and land-use years are read side by side: GDAL reading and GEOS checks release
    # the GIL
    vector_years = [y for y, e in entries.items() if e.format == "vector"]
    found: dict[str, list[Problem]] = {"counties": [], **{str(y): [] for y in vector_years}}
    files = [catalog.datasets.counties.path, catalog.datasets.socioeconomic.path]
    files += [f for y in years for f in catalog.datasets.landuse[y].all_files]
    # the checksums (for resuming) are read meanwhile too; hashing releases the GIL
    sums = in_background(_checksums, files, name="checksums")
    # Counties overlapping each other are only a warning: that check (~1.3 s of CPU nationally)
    # runs in the background once everything is read, beside the overlap check and the zonal
    # stage, which leave CPU to spare (started as soon as the counties were read, it slowed the
    # reading, whose GIL-bound parts it competed with); Inputs.all_notes() waits for its note.
    background: list[Future] = []
    with ThreadPoolExecutor(max_workers=1 + len(vector_years)) as pool:
        counties_job = pool.submit(
            _collect, found["counties"], read_counties, catalog.datasets.counties, config, crs,
            notes,
        )  # fmt: skip
        spill = {y: spill_dir / f"landuse-{y}.arrow" if spill_dir else None for y in years}
        # a study area smaller than the counties file (a province, say, with national land use):
        # polygons whose boxes meet none of its counties' are skipped as they are read
        sa = config.study_area
        within = StudyBoxes(counties_job) if sa.provinces or sa.county_ids else None
        futures = {}
        for y in vector_years:
            args = (entries[y], y, crs, notes, spill[y], within)
            futures[y] = pool.submit(_collect, found[str(y)], read_landuse, *args)
        read = {y: f.result() for y, f in futures.items()}
        counties = counties_job.result()
    if counties is not None:
        job = in_background(
            county_overlap_notes,
            counties[0],
            catalog.datasets.counties.path,
            name="overlaps",
        )
        background.append(job)
    for listed in found.values():  # in a fixed order, whichever thread finished first
        problems.extend(listed)
    counties, known = counties if counties is not None else (None, None)
    ids = counties["county_id"] if counties is not None else None
    socio = _collect(
        problems, read_socio, catalog.datasets.socioeconomic, config.years.target, ids, known,
        notes,
    )  # fmt: skip
    if problems:
        raise InputError(problems)
    if rasters and vector_years:  # a raster year against a vector year: polygonized
        for y in rasters:
            read[y] = (_polygonized(catalog, entries[y], y, counties, notes, spill[y]), None)
    checksums = {str(p): digest or checksum(p) for p, digest in sums.result().items()}
    landuse: LandUse
    if rasters and not vector_years:
        landuse = _rasters(catalog, entries, notes)
    elif spill_dir is not None:
        landuse = Spilled({y: got for y, (got, _) in read.items()})
    else:
        rings = {y: r for y, (_, r) in read.items() if r is not None}
        landuse = InMemory({y: got for y, (got, _) in read.items()}, rings)
    return Inputs(
        counties, landuse, socio, tuple(sorted(notes)), checksums, PendingNotes(tuple(background))
    )


def _rasters(catalog: Catalog, entries: dict, notes: list[str]) -> Rasters:
    """The raster years as one grid each (:func:`~pipeline.ingest.mosaic.one_grid_per_year`: a
    year of several files, or two years on one lattice with different extents, as a VRT)."""
    legends = catalog.legends()
    grids = one_grid_per_year(
        {y: e.all_files for y, e in entries.items()},
        {y: e.crs for y, e in entries.items()},
        {y: legends[y] for y in entries},
        {y: f"landuse {y} ({e.path})" for y, e in entries.items()},
    )
    notes.extend(m.note for m in grids.values() if m.note)
    crs = {y: e.crs for y, e in entries.items() if e.crs}
    return Rasters({y: m.path for y, m in grids.items()}, crs)


def _polygonized(
    catalog: Catalog,
    entry: LanduseSource,
    year: int,
    counties: gpd.GeoDataFrame,
    notes: list[str],
    spill: Path | None,
) -> gpd.GeoDataFrame | Spill:
    """A raster year beside a vector year, as polygons (:mod:`pipeline.ingest.polygonize`)."""
    label = f"landuse {year} ({entry.path})"
    legend = catalog.legends()[year]
    grid = one_grid_per_year({year: entry.all_files}, {year: entry.crs}, {year: legend},
                             {year: label})[year]  # fmt: skip
    if grid.note:
        notes.append(grid.note)
    return polygonize_year(year, grid.path, entry.crs, legend, counties, label, notes, spill)


def _collect(problems: list[Problem], fn: Callable[..., T], *args: object) -> T | None:
    """Call ``fn``; on InputError record its problems and return None."""
    try:
        return fn(*args)
    except InputError as exc:
        problems.extend(exc.problems)
        return None


def _checksums(paths: list[Path]) -> dict[Path, str | None]:
    """:func:`checksum` of each file; None for one that cannot be read (a missing file is
    reported by its reader, with the fix)."""
    out: dict[Path, str | None] = {}
    for path in paths:
        try:
            out[path] = checksum(path)
        except OSError:
            out[path] = None
    return out
