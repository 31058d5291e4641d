"""The land use: read from its files (:func:`read_landuse`: batches streamed from the file,
polygons outside the study area skipped as they are read, class codes read through the year's
legend, held in memory or spilled to disk), and handed on as one of three typed sources, so that
a caller never has to ask which of several fields is filled.

- :class:`InMemory`: vector years held as GeoDataFrames (``class_code``, geometry, in the run's
  equal-area CRS), with the :class:`~pipeline.geom.rings.Rings` of the polygons where they were
  read with them;
- :class:`Spilled`: vector years streamed to disk for a tiled run (:class:`~pipeline.ingest.spill.Spill`);
- :class:`Rasters`: raster years, the files and the CRS the catalog assigns them (pixels are read
  by the zonal stage).

:mod:`pipeline.zonal` picks its path by the variant (``match``/``isinstance``), nobody else does.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from pipeline.codes import RESDC_CLASSES, roll_up, unknown_codes
from pipeline.errors import InputError
from pipeline.geom.boxes import box_pairs
from pipeline.geom.rings import Rings
from pipeline.ingest.spill import Spill, SpillWriter, concat_spills, give_back_memory
from pipeline.settings.catalog import LanduseSource
from pipeline.settings.legends import Legend

__all__ = ["InMemory", "LandUse", "Rasters", "Spilled", "StudyBoxes", "read_landuse"]
from pipeline.ingest.clean import Cleaning, cleaned, to_crs
from pipeline.ingest.vector import read_vector, settled_crs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InMemory:
    """Vector land use in memory: year → class_code, geometry (equal-area CRS)."""

    frames: dict[int, gpd.GeoDataFrame]
    #: year → the Rings of ``frames[year]``'s polygons, for the years read with them
    rings: dict[int, Rings] = field(default_factory=dict)

    def describe(self) -> dict[int, str]:
        """year → a short description for logs and ``ecovoucher validate``."""
        return {y: f"{len(g):,} polygons" for y, g in sorted(self.frames.items())}


@dataclass(frozen=True)
class Spilled:
    """Vector land use streamed to spill files, read back a tile at a time
    (:mod:`pipeline.zonal.tiles`)."""

    spills: dict[int, Spill]

    def describe(self) -> dict[int, str]:
        return {y: f"{s.n:,} polygons" for y, s in sorted(self.spills.items())}


@dataclass(frozen=True)
class Rasters:
    """Raster land use: year → GeoTIFF (or any single-band raster GDAL reads), and year → the
    catalog's ``crs:`` for the years that have one (it overrides the file's)."""

    paths: dict[int, Path]
    crs: dict[int, str] = field(default_factory=dict)

    def describe(self) -> dict[int, str]:
        return {y: f"raster {p.name}" for y, p in sorted(self.paths.items())}


LandUse = InMemory | Spilled | Rasters


# --- reading the vector land use ----------------------------------------------------------------


def read_landuse(
    src: LanduseSource,
    year: int,
    crs: CRS,
    notes: list[str],
    spill: Path | None = None,
    within: StudyBoxes | None = None,
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
    within: StudyBoxes | None = None,
) -> tuple[tuple[gpd.GeoDataFrame | Spill, Rings | None], int]:
    """:func:`read_landuse` of one file, and how many features it has."""
    what = f"landuse {year}"
    where = f"{what} ({src.path})"
    batches = _Batches(src, crs, where, spill, within)
    try:
        attrs = read_vector(src, [src.code_field], what, notes, batches)
    finally:
        batches.close()
    batches.done.check(where)
    codes = _class_codes(attrs[src.code_field], src, where, notes)
    batches.note(notes)
    return batches.result(codes), len(codes)


class StudyBoxes:
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
        within: StudyBoxes | None = None,
    ):
        self.src, self.crs, self.where, self.spill, self.within = src, crs, where, spill, within
        self.writer: SpillWriter | None = None

    def start(self, found: CRS | None) -> None:
        """A new read of the file (again from its start if an encoding was retried)."""
        self.close()
        self.noted: list[str] = []  # the CRS notes, once however often the file is read
        self.file_crs = settled_crs(found, self.src, self.where, self.noted)
        self.n_read = self.outside = 0
        self.done = Cleaning()
        self.rows: list[np.ndarray] = []
        self.geoms: list[np.ndarray] = []
        self.rings: list[Rings | None] = []
        self.writer = SpillWriter(self.spill) if self.spill else None

    def add(self, geoms: np.ndarray, rings: Rings | None) -> None:
        rows = np.arange(self.n_read, self.n_read + len(geoms))
        self.n_read += len(geoms)
        gdf = gpd.GeoDataFrame({"row": rows}, geometry=geoms, crs=self.file_crs)
        gdf = to_crs(gdf, self.crs, self.where, self.noted, densify=True)
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
        gdf, done = cleaned(gdf, proven, drop_collapsed=True)
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
