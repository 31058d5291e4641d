"""Geometry repair and reprojection: empty geometries dropped, invalid ones made valid (only
where GEOS or the ring kernel has not proven them valid), non-polygonal parts removed, and
reprojection to the equal-area CRS (densified first, so that long edges follow the projection)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from pipeline.errors import InputError
from pipeline.geom.crs import same_coordinates
from pipeline.geom.crs_sanity import coordinates_misfit

log = logging.getLogger(__name__)


def clean_geometries(
    gdf: gpd.GeoDataFrame,
    where: str,
    notes: list[str],
    empty_ids: str | None = None,
) -> gpd.GeoDataFrame:
    """Drop empty geometries (or, given ``empty_ids``, refuse them naming those ids) and repair
    invalid ones (see :func:`cleaned`), noting what was done."""
    geoms = gdf.geometry.values
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any() and empty_ids:
        ids = ", ".join(map(str, gdf.loc[empty, empty_ids].head(30)))
        raise InputError(
            f"features without geometry: {ids}. Every county needs its polygon.", where
        )
    gdf, done = cleaned(gdf)
    done.check(where)
    done.note(where, notes)
    return gdf


@dataclass
class Cleaning:
    """What :func:`cleaned` did, summed over the batches of a file."""

    dropped: int = 0  # empty geometries dropped
    repaired: int = 0  # invalid geometries repaired
    collapsed: int = 0  # of those, left without area by the repair, and dropped
    not_polygons: int = 0  # features that are not (Multi)Polygons: an error

    def __iadd__(self, other: Cleaning) -> Cleaning:
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


def cleaned(
    gdf: gpd.GeoDataFrame, proven: np.ndarray | None = None, drop_collapsed: bool = False
) -> tuple[gpd.GeoDataFrame, Cleaning]:
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
    return gdf, Cleaning(int(empty.sum()), int(invalid.sum()), collapsed, int(nonpoly.sum()))


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


def to_crs(
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
