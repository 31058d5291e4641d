"""Stage 2 — ingest: read counties, land use and statistics; check them; bring them to one CRS.

One public function, :func:`ingest`. Every vector is read with pyogrio (Arrow path), its CRS taken
from the file or the catalog, its attribute encoding honoured (a shapefile with no .cpg that is not
UTF-8 is tried as GBK, with a warning), its class codes checked against the RESDC table (3-digit
cropland sub-codes rolled up), invalid geometries repaired and counted, empty ones dropped and
counted, and everything reprojected to the configured equal-area CRS.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from pipeline.codes import RESDC_CLASSES, roll_up, unknown_codes
from pipeline.errors import InputError, Problem
from pipeline.geom.boxes import box_pairs
from pipeline.geom.crs import same_coordinates
from pipeline.geom.crs_sanity import coordinates_misfit
from pipeline.geom.overlaps import polygon_overlaps
from pipeline.geom.rings import Rings
from pipeline.ingest.landuse import InMemory, LandUse, Rasters, Spilled
from pipeline.ingest.spill import Spill, SpillWriter, concat_spills, give_back_memory, wkb_rings
from pipeline.runtime.checksums import checksum
from pipeline.runtime.engine import in_background
from pipeline.settings.catalog import Catalog, CountiesSource, LanduseSource, SocioSource
from pipeline.settings.config import Config
from pipeline.settings.legends import Legend

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
    formats = {e.format for e in entries.values()}
    if len(formats) > 1:
        problems.append(
            Problem(
                f"catalog {catalog.path}, datasets.landuse",
                "mixes vector and raster years ("
                + ", ".join(f"{y}: {e.format}" for y, e in entries.items())
                + "); both years must be of one format for the transfer matrix. Rasterize the "
                "vector year onto the raster's grid, or polygonize the raster.",
            )
        )
    rasters = {y: e.path for y, e in entries.items() if e.format == "raster"}
    for y in rasters:
        if entries[y].files:
            problems.append(
                Problem(
                    f"landuse {y} ({entries[y].path})",
                    f"names {len(entries[y].files)} raster files; a raster year is read as one "
                    "grid. Join tiles of one grid into one file first (gdalbuildvrt tiles.vrt "
                    "*.tif, then name the .vrt), or give the year as vector data.",
                )
            )
    for y, path in rasters.items():
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
            _collect, found["counties"], _read_counties, catalog.datasets.counties, config, crs,
            notes,
        )  # fmt: skip
        spill = {y: spill_dir / f"landuse-{y}.arrow" if spill_dir else None for y in years}
        # a study area smaller than the counties file (a province, say, with national land use):
        # polygons whose boxes meet none of its counties' are skipped as they are read
        sa = config.study_area
        within = _StudyBoxes(counties_job) if sa.provinces or sa.county_ids else None
        futures = {}
        for y in vector_years:
            args = (entries[y], y, crs, notes, spill[y], within)
            futures[y] = pool.submit(_collect, found[str(y)], _read_landuse, *args)
        read = {y: f.result() for y, f in futures.items()}
        counties = counties_job.result()
    if counties is not None:
        job = in_background(
            _warn_county_overlaps,
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
        problems, _read_socio, catalog.datasets.socioeconomic, config.years.target, ids, known,
        notes,
    )  # fmt: skip
    if problems:
        raise InputError(problems)
    checksums = {str(p): digest or checksum(p) for p, digest in sums.result().items()}
    landuse: LandUse
    if rasters:
        landuse = Rasters(rasters, {y: entries[y].crs for y in rasters if entries[y].crs})
    elif spill_dir is not None:
        landuse = Spilled({y: got for y, (got, _) in read.items()})
    else:
        rings = {y: r for y, (_, r) in read.items() if r is not None}
        landuse = InMemory({y: got for y, (got, _) in read.items()}, rings)
    return Inputs(
        counties, landuse, socio, tuple(sorted(notes)), checksums, PendingNotes(tuple(background))
    )


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


# --- vector reading ------------------------------------------------------------------------------


def _read_vector(
    src: CountiesSource | LanduseSource,
    columns: list[str],
    what: str,
    notes: list[str],
    sink: _Batches | None = None,
) -> gpd.GeoDataFrame:
    """Read the named columns of a vector source, honouring layer, crs and encoding. Given a
    ``sink``, the geometry goes to it batch by batch (see :class:`_Batches`) and the frame
    returned holds the columns only (its geometry all None)."""
    where = f"{what} ({src.path})"
    if not src.path.exists():
        raise InputError(f"file not found: {src.path}. Fix 'path' in the catalog.", where=where)
    try:
        layers = pyogrio.list_layers(src.path)
    except Exception as exc:  # GDAL cannot open it at all
        raise InputError(
            f"cannot be opened as a vector file ({exc}). Is it truncated or not a GIS file? "
            "Re-export or re-download it.",
            where=where,
        ) from exc
    if src.layer is None and len(layers) > 1:
        names = ", ".join(str(n) for n in layers[:, 0])
        raise InputError(
            f"holds {len(layers)} layers ({names}); say which with 'layer:' in the catalog.",
            where=where,
        )
    if src.layer is not None and src.layer not in set(layers[:, 0]):
        names = ", ".join(str(n) for n in layers[:, 0])
        raise InputError(f"has no layer '{src.layer}' (layers: {names}).", where=where)
    if src.path.suffix.lower() == ".shp":
        _check_shapefile_sizes(src.path, where)
    gdf = _read_with_encoding(src, columns, where, notes, sink)
    if sink is None:
        gdf = gdf.set_crs(_settled_crs(gdf.crs, src, where, notes), allow_override=True)
    return gdf


def _settled_crs(found: CRS | None, src: CountiesSource | LanduseSource, where: str,
                 notes: list[str]) -> CRS:  # fmt: skip
    """The CRS of a file's coordinates: the catalog's if it gives one (noted when it overrides
    the file's), else the file's; an error if neither has one."""
    if found is None and src.crs is None:
        raise InputError(
            "carries no CRS (no .prj) and the catalog gives none; add e.g. 'crs: EPSG:4326' or "
            "the RESDC Albers definition to its catalog entry.",
            where=where,
        )
    if src.crs is None:
        return CRS.from_user_input(found)
    try:
        declared = CRS.from_user_input(src.crs)
    except CRSError as exc:
        raise InputError(f"catalog crs '{src.crs}' is not a valid CRS ({exc})", where) from exc
    if found is not None and not CRS.from_user_input(found).equals(declared):
        notes.append(f"{where}: the file's CRS is overridden by the catalog's '{src.crs}'")
    return declared


def _check_shapefile_sizes(path: Path, where: str) -> None:
    """A truncated .shp/.shx/.dbf reads as features without geometry or attributes; the file
    headers say how long each part must be, so compare."""
    import struct

    problems = []
    n_shapes = None  # from the .shx: 100-byte header, then 8 bytes per record
    for suffix in (".shp", ".shx"):
        part = path.with_suffix(suffix)
        if not part.exists():
            problems.append(f"{part.name} is missing (a shapefile needs .shp, .shx and .dbf)")
            continue
        with part.open("rb") as f:
            header = f.read(28)
        if len(header) < 28:
            problems.append(f"{part.name} is truncated ({len(header)} bytes)")
            continue
        declared = struct.unpack(">i", header[24:28])[0] * 2  # in 16-bit words
        actual = part.stat().st_size
        if actual < declared:
            problems.append(
                f"{part.name} is truncated: its header says {declared:,} bytes, the file has {actual:,}"
            )
        elif suffix == ".shx":
            n_shapes = (declared - 100) // 8
    dbf = path.with_suffix(".dbf")
    if dbf.exists():
        with dbf.open("rb") as f:
            header = f.read(12)
        if len(header) == 12:
            n, header_len, record_len = struct.unpack("<IHH", header[4:12])
            declared = header_len + n * record_len
            if dbf.stat().st_size < declared:
                problems.append(
                    f"{dbf.name} is truncated: {n:,} records need {declared:,} bytes, the file has "
                    f"{dbf.stat().st_size:,}"
                )
            elif n_shapes is not None and n != n_shapes:
                # GDAL reads min(n, shapes) features: the others would be dropped silently
                problems.append(
                    f"{path.with_suffix('.shx').name} lists {n_shapes:,} shapes but "
                    f"{dbf.name} has {n:,} records; the parts belong to different versions of "
                    "the file"
                )
    if problems:
        raise InputError("; ".join(problems) + ". Copy or export the shapefile again.", where=where)


def _read_with_encoding(
    src: CountiesSource | LanduseSource,
    columns: list[str],
    where: str,
    notes: list[str],
    sink: _Batches | None = None,
) -> gpd.GeoDataFrame:
    """Read with the declared encoding; a shapefile with neither a declared encoding nor a .cpg
    is tried as UTF-8, then as GBK (RESDC's usual encoding), with a note. Field names are
    decoded with the same encoding (a GBK .dbf may have Chinese field names)."""
    no_cpg = src.path.suffix.lower() == ".shp" and not any(
        src.path.with_suffix(s).exists() for s in (".cpg", ".CPG")
    )
    if src.encoding:
        candidates = [src.encoding]
    elif no_cpg:
        candidates = ["utf-8", "gbk"]
    else:
        candidates = [None]
    last: Exception | None = None
    for encoding in candidates:
        try:
            fields = list(pyogrio.read_info(src.path, layer=src.layer, encoding=encoding)["fields"])
            missing = [c for c in columns if c not in fields]
            if missing:
                raise InputError(
                    f"has no field {', '.join(repr(c) for c in missing)} (fields: "
                    f"{', '.join(fields)}). Name the right field in the catalog.",
                    where=where,
                )
            gdf = _read_arrow(src.path, src.layer, columns, encoding, sink)
            # Arrow text is decoded lazily: decode it now, so a wrong encoding shows here
            for col in columns:
                if not pd.api.types.is_numeric_dtype(gdf[col]):
                    gdf[col] = gdf[col].to_numpy(dtype=object)
        except LookupError as exc:
            raise InputError(
                f"unknown encoding '{encoding}' in the catalog ({exc})", where
            ) from exc
        except InputError:
            raise
        except _NotTheFile as exc:
            raise exc.__cause__  # noqa: B904 — the error itself, as it was raised
        except Exception as exc:
            if not _is_decode_error(exc):  # truncated .shp/.dbf, corrupt geometry blobs
                raise InputError(
                    f"could not be read ({type(exc).__name__}: {exc}). The file may be truncated "
                    "or corrupt; re-export it.",
                    where=where,
                ) from exc
            last = exc
            continue
        if encoding == "gbk" and not src.encoding:
            notes.append(f"{where}: attributes are not UTF-8 and there is no .cpg; read as GBK")
            log.warning(
                "%s: no .cpg and not UTF-8; read as GBK (set 'encoding:' to silence)", where
            )
        return gdf
    tried = " or ".join(str(c or "the file's own encoding") for c in candidates)
    raise InputError(
        f"attribute text does not decode as {tried} ({last}). Set 'encoding:' in its catalog "
        "entry (e.g. gbk, gb18030, utf-8, latin1).",
        where=where,
    )


class _NotTheFile(Exception):
    """Wraps an error raised while processing what was read, so that it is not reported as an
    unreadable file."""


#: features per Arrow batch when reading a vector file
READ_BATCH = 65536


def _read_arrow(
    path: Path,
    layer: str | int | None,
    columns: list[str],
    encoding: str | None,
    sink: _Batches | None = None,
) -> gpd.GeoDataFrame:
    """The named columns and the geometry of a vector layer, read through GDAL's Arrow stream in
    batches. Each batch's WKB becomes shapely geometry (which holds the GIL) while GDAL reads on
    in the threads reading the other files (which it does without the GIL): three files read
    side by side this way take ~1.8 s nationally, against ~3 s with ``read_dataframe``, which
    parses all geometry at the end. Given a ``sink``, each batch's geometry and its
    :class:`~pipeline.geom.rings.Rings` (read from the same WKB, ~0.1 s nationally against ~0.5 s from
    the shapely geometries; None if a geometry is not a plain (Multi)Polygon) go to it as they
    are read, and the frame returned has no geometry (all None)."""
    from pyogrio.raw import open_arrow

    geoms, values = [], {c: [] for c in columns}
    n = 0
    with open_arrow(
        path, layer=layer, columns=columns, encoding=encoding, use_pyarrow=True,
        batch_size=READ_BATCH,
    ) as (meta, reader):  # fmt: skip
        name = meta["geometry_name"] or "wkb_geometry"
        if sink is not None:
            sink.start(meta["crs"])
        for batch in reader:
            if name not in batch.schema.names:
                raise InputError("has no geometry; a polygon layer is needed", where=str(path))
            wkb = batch.column(name)
            parsed = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))
            if sink is not None:
                try:
                    sink.add(parsed, wkb_rings(wkb))
                except InputError:
                    raise
                except Exception as exc:  # reprojecting or repairing: not a corrupt file
                    raise _NotTheFile from exc
            else:
                geoms.append(parsed)
            n += len(batch)
            for c in columns:
                values[c].append(batch.column(c).to_numpy(zero_copy_only=False))
    empty = np.array([], dtype=object)
    frame = {c: np.concatenate(v) if v else empty for c, v in values.items()}
    geometry = np.concatenate(geoms) if geoms else np.full(n, None, dtype=object)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=meta["crs"])


def _is_decode_error(exc: BaseException) -> bool:
    """pyogrio raises UnicodeDecodeError, or an Arrow error wrapping one, on undecodable text."""
    while exc is not None:
        if isinstance(exc, UnicodeDecodeError) or "Wrapping" in str(exc) or "decode" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _clean_geometries(
    gdf: gpd.GeoDataFrame,
    where: str,
    notes: list[str],
    empty_ids: str | None = None,
) -> gpd.GeoDataFrame:
    """Drop empty geometries (or, given ``empty_ids``, refuse them naming those ids) and repair
    invalid ones (see :func:`_cleaned`), noting what was done."""
    geoms = gdf.geometry.values
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any() and empty_ids:
        ids = ", ".join(map(str, gdf.loc[empty, empty_ids].head(30)))
        raise InputError(
            f"features without geometry: {ids}. Every county needs its polygon.", where
        )
    gdf, done = _cleaned(gdf)
    done.check(where)
    done.note(where, notes)
    return gdf


@dataclass
class _Cleaning:
    """What :func:`_cleaned` did, summed over the batches of a file."""

    dropped: int = 0  # empty geometries dropped
    repaired: int = 0  # invalid geometries repaired
    collapsed: int = 0  # of those, left without area by the repair, and dropped
    not_polygons: int = 0  # features that are not (Multi)Polygons: an error

    def __iadd__(self, other: _Cleaning) -> _Cleaning:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def check(self, where: str) -> None:
        if self.not_polygons:
            raise InputError(
                f"{self.not_polygons} features are not polygons; land use and counties must be "
                "polygon layers.",
                where=where,
            )

    def note(self, where: str, notes: list[str]) -> None:
        if self.dropped:
            notes.append(f"{where}: dropped {self.dropped} empty geometries")
            log.warning("%s: dropped %d empty geometries", where, self.dropped)
        if self.repaired:
            msg = f"repaired {self.repaired} invalid geometries (areas from the repaired shapes)"
            if self.collapsed:
                msg += f"; {self.collapsed} of them had no area left and were dropped"
            notes.append(f"{where}: {msg}")
            log.warning("%s: %s", where, msg)


def _cleaned(
    gdf: gpd.GeoDataFrame, proven: np.ndarray | None = None, drop_collapsed: bool = False
) -> tuple[gpd.GeoDataFrame, _Cleaning]:
    """Drop empty geometries and repair invalid ones, keeping only their polygonal parts; also
    count what was done, and the features that are not polygons. ``proven``: for each feature,
    whether :meth:`~pipeline.geom.rings.Rings.simple_valid` has proven it valid already (GEOS checks
    the others; nationally ~0.04 s instead of ~0.45 s a year). ``drop_collapsed``: drop what a
    repair leaves empty (a zero-area ring; land use), rather than keep it (a county: it is then
    refused as a county without area)."""
    geoms = gdf.geometry.values
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        gdf = gdf.loc[~empty]
        geoms = gdf.geometry.values
        proven = proven[~empty] if proven is not None else None
    invalid = np.zeros(len(geoms), dtype=bool)
    ask = np.flatnonzero(~proven) if proven is not None else slice(None)
    invalid[ask] = ~shapely.is_valid(np.asarray(geoms)[ask])
    collapsed = 0
    if invalid.any():
        fixed = shapely.make_valid(np.asarray(geoms[invalid]))
        fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
        gdf = gdf.copy()
        gdf.loc[gdf.index[invalid], gdf.geometry.name] = fixed
        if drop_collapsed and shapely.is_empty(fixed).any():
            gone = np.zeros(len(gdf), dtype=bool)
            gone[np.flatnonzero(invalid)[shapely.is_empty(fixed)]] = True
            collapsed = int(gone.sum())
            gdf = gdf.loc[~gone]
    nonpoly = ~np.isin(shapely.get_type_id(gdf.geometry.values), (3, 6))
    return gdf, _Cleaning(int(empty.sum()), int(invalid.sum()), collapsed, int(nonpoly.sum()))


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygon parts of what make_valid returns (it may add lines or points)."""
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = shapely.get_parts(geom)
    polys = [p for p in parts if shapely.get_type_id(p) in (3, 6)]
    return shapely.union_all(polys) if polys else shapely.Polygon()


#: before a real reprojection land-use edges are cut to at most this length (metres; 0.001° for a
#: geographic source), so that straight edges stay on their neighbours' vertices (T-junctions)
DENSIFY_M = 100.0


def _to_crs(
    gdf: gpd.GeoDataFrame, crs: CRS, where: str, notes: list[str], densify: bool = False
) -> gpd.GeoDataFrame:
    """Reproject, skipping the work when the two CRSs give the same coordinates (< 1 mm). Before
    anything else the coordinates must fit the CRS they are declared in (a .prj saying degrees over
    metres would make the densifying below cut every edge into millions of pieces)."""
    misfit = coordinates_misfit(gdf.total_bounds, gdf.crs)
    if misfit:
        raise InputError(misfit, where)
    if same_coordinates(gdf.crs, crs, gdf.total_bounds):
        return gdf.set_crs(crs, allow_override=True)
    if densify:
        step = DENSIFY_M / 1e5 if gdf.crs.is_geographic else DENSIFY_M
        gdf = gdf.set_geometry(shapely.segmentize(gdf.geometry.values, step))
    notes.append(f"{where}: reprojected from {gdf.crs.name} to the equal-area CRS")
    out = gdf.to_crs(crs)
    geoms = out.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    bad = present & ~np.isfinite(shapely.bounds(geoms)).all(axis=1)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} features cannot be projected to the equal-area CRS (infinite "
            "coordinates). Is the file's CRS right? Check its .prj or the catalog's 'crs:'.",
            where,
        )
    return out


# --- counties ------------------------------------------------------------------------------------


def _read_counties(
    src: CountiesSource, config: Config, crs: CRS, notes: list[str]
) -> tuple[gpd.GeoDataFrame, frozenset[str]]:
    """The study area's counties, and the ids of every county in the file."""
    where = f"counties ({src.path})"
    fields = {"county_id": src.id_field, "name": src.name_field}
    if src.province_field:
        fields["province"] = src.province_field
    if src.city_field:
        fields["city"] = src.city_field
    gdf = _read_vector(src, list(dict.fromkeys(fields.values())), "counties", notes)
    out = gpd.GeoDataFrame(
        {k: gdf[v].to_numpy() for k, v in fields.items()}, geometry=gdf.geometry.values, crs=gdf.crs
    )
    for col in ("province", "city"):
        if col not in out:
            out[col] = None
    out["county_id"] = out["county_id"].map(_id_text)
    problems = []
    blank = out["county_id"].isna() | (out["county_id"] == "")
    if blank.any():
        problems.append(
            Problem(where, f"{int(blank.sum())} counties have an empty '{src.id_field}'")
        )
    dup = out.loc[out["county_id"].duplicated(keep=False) & ~blank, "county_id"]
    if len(dup):
        ids = ", ".join(sorted(set(dup)))
        problems.append(
            Problem(
                f"{where}, field '{src.id_field}'",
                f"duplicate county ids {ids}: each county must appear once (dissolve multi-part "
                "counties into one feature).",
            )
        )
    noname = out["name"].isna() | (out["name"].astype(str).str.strip() == "")
    if noname.any():
        ids = ", ".join(out.loc[noname, "county_id"].astype(str).head(20))
        problems.append(
            Problem(f"{where}, field '{src.name_field}'", f"counties without a name: {ids}")
        )
    if problems:
        raise InputError(problems)
    all_ids = frozenset(out["county_id"].dropna())  # every county of the file, for the statistics
    out = _select_study_area(out, config, where)
    # no area in the file's own coordinates: degenerate, even if reprojecting bends it into a
    # sliver of a few m² (a zero-width county in lon/lat came out as 36 m²)
    geoms = out.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    flat = out.loc[present & ~(shapely.area(geoms) > 0), "county_id"]
    if len(flat):
        raise InputError(
            f"counties with no area (degenerate polygons): {_ids(flat)}. Fix their boundaries.",
            where,
        )
    out = _to_crs(out, crs, where, notes)  # then repair: a reprojection can invalidate a ring
    out = _clean_geometries(out, where, notes, empty_ids="county_id")
    out["area_m2"] = out.geometry.area
    flat = out.loc[~(out["area_m2"] > 0), "county_id"]
    if len(flat):
        raise InputError(
            f"counties with no area (degenerate polygons): {_ids(flat)}. Fix their boundaries.",
            where,
        )
    return out.sort_values("county_id").reset_index(drop=True), all_ids


def county_overlaps(counties: gpd.GeoDataFrame) -> pd.DataFrame:
    """Pairs of county polygons that overlap: ``first, second`` (county ids), ``area_ha``.

    Land use in such a strip counts in both counties; boundary data from other sources often has
    slivers like that. Same method as for land use: screening, then pair tests
    (:func:`pipeline.geom.overlaps.polygon_overlaps`).
    """
    pairs = pd.DataFrame(polygon_overlaps(np.asarray(counties.geometry.values)))
    if not len(pairs):
        return pairs
    ids = counties["county_id"].to_numpy()
    return pairs.assign(
        first=ids[pairs["first"].astype(int)], second=ids[pairs["second"].astype(int)]
    )


def _warn_county_overlaps(counties: gpd.GeoDataFrame, path: Path) -> list[str]:
    """The note (and warning) about overlapping counties, if any."""
    overlapping = county_overlaps(counties)
    if not len(overlapping):
        return []
    listing = ", ".join(
        f"{r.first} & {r.second} ({r.area_ha:,.4f} ha)" for r in overlapping.head(10).itertuples()
    )
    msg = (
        f"{len(overlapping)} pairs of counties overlap ({listing}); land use in those strips "
        "counts in both counties. Clean the boundaries if that matters."
    )
    where = f"counties ({path})"
    log.warning("%s: %s", where, msg)
    return [f"{where}: {msg}"]


def _id_text(v: object) -> str | None:
    """County codes as text: 110101, 110101.0 and '110101' are the same county."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    text = str(v).strip()
    if re.fullmatch(r"\d+\.0+", text):  # "110101.0": a code that went through a float
        return text.split(".")[0]
    return text


def _select_study_area(out: gpd.GeoDataFrame, config: Config, where: str) -> gpd.GeoDataFrame:
    sa = config.study_area
    keep = np.ones(len(out), dtype=bool)
    if sa.provinces:
        available = sorted(out["province"].dropna().astype(str).unique())
        unknown = [p for p in sa.provinces if p not in set(available)]
        if unknown:
            raise InputError(
                f"study_area.provinces {unknown} match no county's province. Provinces in the "
                f"data: {', '.join(available) or 'none (no province field)'}",
                where=f"config {config.path}",
            )
        keep &= out["province"].isin(sa.provinces).to_numpy()
    if sa.county_ids:
        unknown = sorted(set(sa.county_ids) - set(out["county_id"]))
        if unknown:
            raise InputError(
                f"study_area.county_ids {', '.join(unknown[:30])} are not in {where}",
                where=f"config {config.path}",
            )
        keep &= out["county_id"].isin(sa.county_ids).to_numpy()
    if not keep.any():
        raise InputError(
            "no counties are left after the study-area filter (provinces and county_ids together)",
            where=f"config {config.path}",
        )
    return out.loc[keep]


# --- land use ------------------------------------------------------------------------------------


def _read_landuse(
    src: LanduseSource,
    year: int,
    crs: CRS,
    notes: list[str],
    spill: Path | None = None,
    within: _StudyBoxes | None = None,
) -> tuple[gpd.GeoDataFrame | Spill, Rings | None]:
    """The year's polygons (class_code, row, geometry) and their Rings (None when a geometry had
    to be reprojected or repaired: then they are no longer the file's). With ``spill`` (a file
    path), the polygons are streamed to that file instead of being kept (see
    :mod:`pipeline.ingest.spill`) and the :class:`~pipeline.ingest.spill.Spill` is returned. With ``within``,
    only the polygons whose bounding boxes meet a study-area county's are kept (the others
    cannot count in any of its counties)."""
    files = src.all_files
    if len(files) == 1:
        return _read_landuse_file(src, year, crs, notes, spill, within)[0]
    # several files (a GDB per county, a shapefile per province, …), each in its own CRS: read
    # one after the other and joined as one year, rows numbered on across the files
    parts, sizes = [], []
    for i, path in enumerate(files):
        one = src.model_copy(update={"path": path, "files": ()})
        part_spill = spill.with_name(f"{spill.stem}-{i}{spill.suffix}") if spill else None
        got, n = _read_landuse_file(one, year, crs, notes, part_spill, within)
        parts.append(got)
        sizes.append(n)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    notes.append(f"landuse {year}: {len(files)} files read as one year ({sum(sizes):,} features)")
    if spill is not None:
        return concat_spills([p for p, _ in parts], offsets, spill), None
    frames = [gdf.assign(row=gdf["row"].to_numpy() + off) for (gdf, _), off in zip(parts, offsets)]
    out = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
    rings = [r for _, r in parts]
    return out, (Rings.concat(rings) if all(r is not None for r in rings) else None)


def _read_landuse_file(
    src: LanduseSource,
    year: int,
    crs: CRS,
    notes: list[str],
    spill: Path | None = None,
    within: _StudyBoxes | None = None,
) -> tuple[tuple[gpd.GeoDataFrame | Spill, Rings | None], int]:
    """:func:`_read_landuse` of one file, and how many features it has."""
    what = f"landuse {year}"
    where = f"{what} ({src.path})"
    batches = _Batches(src, crs, where, spill, within)
    try:
        attrs = _read_vector(src, [src.code_field], what, notes, batches)
    finally:
        batches.close()
    batches.done.check(where)
    codes = _class_codes(attrs[src.code_field], src, where, notes)
    batches.note(notes)
    return batches.result(codes), len(codes)


class _StudyBoxes:
    """The bounding boxes of the study area's counties, once they are read (the land-use readers
    wait for them); None if the counties could not be read (their errors are reported)."""

    def __init__(self, counties: Future):
        self._counties = counties
        self._boxes: np.ndarray | None = None

    def boxes(self) -> np.ndarray | None:
        if self._boxes is None:
            read = self._counties.result()
            if read is None:
                return None
            self._boxes = shapely.bounds(np.asarray(read[0].geometry.values))
        return self._boxes


class _Batches:
    """Receives a land-use file's geometry batch by batch as it is read (see :func:`_read_arrow`):
    reprojects each batch (densified), drops empty and repairs invalid geometries, and keeps the
    result — in memory, or written to a spill file. Per batch, what is done to each polygon is
    what would be done to it in the whole file, so both give the same geometry bit for bit."""

    def __init__(
        self,
        src: LanduseSource,
        crs: CRS,
        where: str,
        spill: Path | None,
        within: _StudyBoxes | None = None,
    ):
        self.src, self.crs, self.where, self.spill, self.within = src, crs, where, spill, within
        self.writer: SpillWriter | None = None

    def start(self, found: CRS | None) -> None:
        """A new read of the file (again from its start if an encoding was retried)."""
        self.close()
        self.noted: list[str] = []  # the CRS notes, once however often the file is read
        self.file_crs = _settled_crs(found, self.src, self.where, self.noted)
        self.n_read = self.outside = 0
        self.done = _Cleaning()
        self.rows: list[np.ndarray] = []
        self.geoms: list[np.ndarray] = []
        self.rings: list[Rings | None] = []
        self.writer = SpillWriter(self.spill) if self.spill else None

    def add(self, geoms: np.ndarray, rings: Rings | None) -> None:
        rows = np.arange(self.n_read, self.n_read + len(geoms))
        self.n_read += len(geoms)
        gdf = gpd.GeoDataFrame({"row": rows}, geometry=geoms, crs=self.file_crs)
        gdf = _to_crs(gdf, self.crs, self.where, self.noted, densify=True)
        boxes = self.within.boxes() if self.within is not None else None
        if boxes is not None:
            bounds = shapely.bounds(gdf.geometry.values)
            keep = np.isnan(bounds[:, 0])  # empty: kept, to be counted as dropped
            keep[box_pairs(bounds, boxes)[0]] = True
            if not keep.all():
                self.outside += int((~keep).sum())
                gdf = gdf.loc[keep]
        # the Rings describe the geometry as read: only while every polygon is the object read
        if rings is not None and not _same_objects(np.asarray(gdf.geometry.values), geoms):
            rings = None
        proven = rings.simple_valid() if rings is not None else None
        gdf, done = _cleaned(gdf, proven, drop_collapsed=True)
        self.done += done
        kept = np.asarray(gdf.geometry.values)
        if rings is not None and not _same_objects(kept, geoms):
            rings = None
        if self.writer is not None:
            self.writer.add(gdf["row"].to_numpy(), kept)
            give_back_memory()  # the batch's geometries, freed
            return
        self.rows.append(gdf["row"].to_numpy())
        self.geoms.append(kept)
        self.rings.append(rings)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def note(self, notes: list[str]) -> None:
        notes.extend(dict.fromkeys(self.noted))  # a note per batch reprojected: once
        self.done.note(self.where, notes)
        if self.outside:
            notes.append(
                f"{self.where}: skipped {self.outside:,} polygons outside the study area (their "
                "bounding boxes meet no county of it)"
            )

    def result(self, codes: np.ndarray) -> tuple[gpd.GeoDataFrame | Spill, Rings | None]:
        if self.writer is not None:
            return self.writer.spill(codes, self.crs), None
        rows = np.concatenate(self.rows) if self.rows else np.zeros(0, dtype=np.int64)
        geoms = np.concatenate(self.geoms) if self.geoms else np.array([], dtype=object)
        out = gpd.GeoDataFrame(
            {"class_code": codes[rows], "row": rows}, geometry=geoms, crs=self.crs
        )
        if not self.rings or any(r is None for r in self.rings):
            return out, None
        return out, Rings.concat(self.rings)


def _class_codes(values: pd.Series, src: LanduseSource, where: str, notes: list[str]) -> np.ndarray:
    """The class code of every feature as the zonal stage's int16 number (RESDC: the code, with
    cropland sub-codes rolled up; another legend: :meth:`Legend.to_internal`, its nodata codes
    0); an error naming the bad values, as they are written, if any is not a code of the year's
    legend."""
    legend = src.legend_of()
    if legend.key != "resdc":
        return _legend_codes(values, legend, src, where, notes)
    raw = pd.to_numeric(values, errors="coerce")
    if raw.isna().any() or not np.all(np.mod(raw.to_numpy(), 1) == 0):
        bad = values.loc[raw.isna() | (np.mod(raw.fillna(0), 1) != 0)]
        sample = ", ".join(repr(v) for v in bad.unique()[:10])
        raise InputError(
            f"{len(bad)} features have a non-integer class code in '{src.code_field}' ({sample})",
            where=where,
        )
    codes = roll_up(raw.to_numpy().astype(np.int64))
    rolled = int((codes != raw.to_numpy()).sum())
    if rolled:
        notes.append(f"{where}: rolled {rolled} cropland sub-codes (111–124) up to 11/12")
    bad = unknown_codes(codes)
    if bad:
        listing = ", ".join(f"{c} ({n} features)" for c, n in bad.items())
        raise InputError(
            f"codes not in the RESDC table in field '{src.code_field}': {listing}. Valid codes: "
            f"{', '.join(map(str, RESDC_CLASSES))} (and 111–114, 121–124). Recode them, or check "
            "that code_field names the class-code field.",
            where=where,
        )
    return codes.astype(np.int16)


def _legend_codes(
    values: pd.Series, legend: Legend, src: LanduseSource, where: str, notes: list[str]
) -> np.ndarray:
    """:func:`_class_codes` for a legend other than RESDC (codes may be text, kept exactly)."""
    raw = legend.codes_of(values.to_numpy())
    codes = legend.normalise(raw)
    rolled = sum(1 for a, b in zip(raw, codes) if a != b)
    if rolled:
        notes.append(f"{where}: rolled {rolled} codes up as {legend.label()} says")
    bad = legend.unknown(codes)
    if bad:
        counts = pd.Series(codes, dtype=object).value_counts()
        raise InputError(
            f"field '{src.code_field}': " + legend.unknown_message(
                {c: int(counts[c]) for c in bad}, "features"
            ),
            where=where,
        )  # fmt: skip
    nodata = [c in legend.nodata for c in codes]
    if any(nodata):
        notes.append(f"{where}: {sum(nodata):,} features of nodata codes count in no class")
    classes = [c if not nd else next(iter(legend.classes)) for c, nd in zip(codes, nodata)]
    out = legend.to_internal(classes)
    out[np.asarray(nodata, dtype=bool)] = 0
    return out


def _same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


# --- statistics ----------------------------------------------------------------------------------


_ENCODINGS = ["utf-8-sig", "gbk"]
#: statistics delivered as a workbook (yearbook tables often are), read with openpyxl
_EXCEL = (".xlsx", ".xlsm")


def _read_socio_sheet(src: SocioSource, where: str) -> pd.DataFrame:
    """The first sheet (or ``sheet:``) of an .xlsx workbook, every cell as text, the first row
    as the header; numbers come back as Excel stored them (1234.5 → "1234.5")."""
    try:
        sheets = pd.read_excel(src.path, sheet_name=None, dtype=str, engine="openpyxl")
    except Exception as exc:
        raise InputError(
            f"is not a readable .xlsx workbook ({exc}); open it in Excel and save it again, or "
            "save it as CSV UTF-8",
            where=where,
        ) from exc
    if src.sheet is not None and src.sheet not in sheets:
        raise InputError(
            f"has no sheet '{src.sheet}' (sheets: {', '.join(sheets)}); fix 'sheet' in the catalog",
            where=where,
        )
    name = src.sheet if src.sheet is not None else next(iter(sheets))
    df = sheets[name]
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip() if col.dtype == object else col)


def _read_socio(
    src: SocioSource,
    year: int,
    county_ids: pd.Series | None,
    known_ids: frozenset[str] | None,
    notes: list[str],
) -> pd.DataFrame:
    """Target-year GDP and population per county; ``county_ids`` None (counties unreadable) checks
    the file alone."""
    where = f"socioeconomic ({src.path})"
    if not src.path.exists():
        raise InputError(f"file not found: {src.path}. Fix 'path' in the catalog.", where=where)
    df = _read_socio_sheet(src, where) if src.path.suffix.lower() in _EXCEL else None
    for encoding in [] if df is not None else [src.encoding] if src.encoding else _ENCODINGS:
        try:
            df = pd.read_csv(src.path, dtype=str, encoding=encoding, skipinitialspace=True)
        except UnicodeDecodeError:
            continue
        except LookupError as exc:
            raise InputError(f"unknown encoding '{encoding}' ({exc})", where=where) from exc
        except Exception as exc:
            raise InputError(f"is not a readable CSV ({exc})", where=where) from exc
        if encoding == "gbk" and not src.encoding:  # Chinese Excel saves CSV as GBK
            notes.append(f"{where}: not UTF-8; read as GBK")
            log.warning("%s: not UTF-8; read as GBK (set 'encoding:' to silence)", where)
        break
    if df is None:
        tried = src.encoding or "UTF-8 or GBK"
        raise InputError(
            f"does not decode as {tried}; set 'encoding:' (e.g. gb18030) in its catalog entry",
            where=where,
        )
    cols = [src.id_field, src.year_field, src.gdp_field, src.population_field]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(
            f"has no column {', '.join(map(repr, missing))} (columns: {', '.join(df.columns)}); "
            "name the right columns in the catalog.",
            where=where,
        )
    df = df[cols].rename(
        columns={
            src.id_field: "county_id",
            src.year_field: "year",
            src.gdp_field: "gdp",
            src.population_field: "pop",
        }
    )
    df["county_id"] = df["county_id"].map(_id_text)
    df["year"] = pd.to_numeric(df["year"], errors="coerce")
    df = df.loc[df["year"] == year]
    wanted = set(county_ids) if county_ids is not None else set(df["county_id"])
    problems = []
    for col, field_name in (("gdp", src.gdp_field), ("pop", src.population_field)):
        num = pd.to_numeric(df[col], errors="coerce")
        mine = df["county_id"].isin(wanted)  # other counties' cells are not used: not checked
        bad = df.loc[num.isna() & mine, "county_id"]
        if len(bad):
            problems.append(
                Problem(
                    f"{where}, column '{field_name}', year {year}",
                    f"non-numeric or empty values for counties {_ids(bad)}",
                )
            )
        inf = df.loc[np.isinf(num) & mine, "county_id"]  # inf, Infinity, 1e400
        if len(inf):
            problems.append(
                Problem(
                    f"{where}, column '{field_name}', year {year}",
                    f"values that are not finite numbers (inf, Infinity, or beyond 1e308) for "
                    f"counties {_ids(inf)}",
                )
            )
        nonpos = df.loc[(num <= 0) & mine, "county_id"]
        if len(nonpos):
            problems.append(
                Problem(
                    f"{where}, column '{field_name}', year {year}",
                    f"zero or negative values for counties {_ids(nonpos)}; they must be > 0",
                )
            )
        df[col] = num
    dups = df.loc[
        df["county_id"].duplicated(keep=False) & df["county_id"].isin(wanted), "county_id"
    ]
    if len(dups):
        problems.append(Problem(where, f"several rows for year {year} for counties {_ids(dups)}"))
    absent = sorted(wanted - set(df["county_id"]))
    if absent:
        stripped = {i.lstrip("0") for i in df["county_id"].dropna()}
        hint = ""
        if any(i.lstrip("0") in stripped for i in absent if i.startswith("0")):
            hint = " The CSV seems to have lost leading zeros (e.g. opened in Excel): keep codes as text."
        problems.append(
            Problem(
                where,
                f"no row for year {year} for {len(absent)} counties of the study area: "
                f"{_ids(absent)}. Add them (GDP and population are needed for G_t and P_t).{hint}",
            )
        )
    if problems:
        raise InputError(problems)
    extra = sorted(set(df["county_id"]) - wanted)
    if extra:
        unknown = sorted(set(extra) - (known_ids or frozenset()))
        if unknown:  # a typo in a code, or a table of another boundary release
            msg = f"rows for {len(unknown)} counties that are not in the counties file ignored: "
            notes.append(f"{where}: {msg}{_ids(unknown)}")
            log.warning("%s: %s%s", where, msg, _ids(unknown))
        if len(extra) > len(unknown):
            notes.append(
                f"{where}: ignored rows for {len(extra) - len(unknown)} counties outside the "
                "study area"
            )
    df = df.loc[df["county_id"].isin(wanted)]
    # gdp × gdp_scale is yuan, e.g. 1,234.5 (10⁴ yuan) × 10000 = 12,345,000 yuan
    out = pd.DataFrame(
        {
            "gdp_yuan": df["gdp"].to_numpy(float) * src.gdp_scale,
            "population": df["pop"].to_numpy(float) * src.population_scale,
        },
        index=pd.Index(df["county_id"], name="county_id"),
    ).sort_index()
    for col, scale in (("gdp_yuan", "gdp_scale"), ("population", "population_scale")):
        over = out.index[~np.isfinite(out[col].to_numpy())]
        if len(over):
            raise InputError(
                f"{col.split('_')[0]} × {scale} ({getattr(src, scale):g}) overflows for counties "
                f"{_ids(list(over))}; check {scale} in the catalog",
                where=where,
            )
    return out


def _ids(ids: pd.Series | list) -> str:
    ids = sorted({str(i) for i in ids})
    more = f" … ({len(ids)} in all)" if len(ids) > 30 else ""
    return ", ".join(ids[:30]) + more
